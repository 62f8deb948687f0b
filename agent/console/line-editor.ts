// Line discipline for a person typing at a serial terminal: printable ASCII is echoed,
// backspace erases, Ctrl-C and Ctrl-U drop the line, escape sequences (arrow keys) and
// other control or non-ASCII bytes are swallowed without echo. A line longer than the
// limit is not kept: its bytes are dropped until the end of line, which then reports it.
export const MAX_LINE_BYTES = 4096;

export type EditorEvent = { type: 'echo'; text: string } | { type: 'line'; line: string } | { type: 'too-long'; bytes: number } | { type: 'cancel' };

const BACKSPACE = 0x08;
const DELETE = 0x7f;
const CTRL_C = 0x03;
const CTRL_U = 0x15;
const ESC = 0x1b;

export class LineEditor {
  private line: number[] = [];
  private overflow = 0;
  private lastWasCr = false;
  /** 0: normal, 1: after ESC, 2: inside a CSI/SS3 sequence. */
  private escape = 0;
  private readonly maxBytes: number;

  constructor(maxBytes = MAX_LINE_BYTES) {
    this.maxBytes = maxBytes;
  }

  /** Feeds received bytes; returns, in order, what to echo and the finished lines. */
  feed(chunk: Uint8Array): EditorEvent[] {
    let echo = '';
    const events: EditorEvent[] = [];
    const flush = () => { if (echo) events.push({ type: 'echo', text: echo }); echo = ''; };
    for (const byte of chunk) {
      const afterCr = this.lastWasCr;
      this.lastWasCr = byte === 0x0d;
      if (this.escape === 1) { this.escape = byte === 0x5b || byte === 0x4f ? 2 : 0; continue; }
      if (this.escape === 2) { if (byte >= 0x40 && byte <= 0x7e) this.escape = 0; continue; }
      if (byte === 0x0d || byte === 0x0a) {
        if (byte === 0x0a && afterCr) continue; // CR LF is one end of line
        echo += '\r\n';
        flush();
        events.push(this.overflow > 0 ? { type: 'too-long', bytes: this.line.length + this.overflow } : { type: 'line', line: String.fromCharCode(...this.line) });
        this.clear();
      } else if (byte === BACKSPACE || byte === DELETE) {
        if (this.overflow === 0 && this.line.length > 0) { this.line.pop(); echo += '\b \b'; }
      } else if (byte === CTRL_C) {
        echo += '^C\r\n';
        flush();
        events.push({ type: 'cancel' });
        this.clear();
      } else if (byte === CTRL_U) {
        if (this.overflow === 0) echo += '\b \b'.repeat(this.line.length);
        this.clear();
      } else if (byte === ESC) {
        this.escape = 1;
      } else if (byte >= 0x20 && byte < 0x7f) {
        if (this.overflow > 0 || this.line.length >= this.maxBytes) this.overflow++;
        else { this.line.push(byte); echo += String.fromCharCode(byte); }
      }
      // Anything else (other control bytes, bytes >= 0x80) is line noise: ignored.
    }
    flush();
    return events;
  }

  /** Drops the partial line (the port closed or reopened). */
  clear(): void {
    this.line = [];
    this.overflow = 0;
    this.escape = 0;
  }
}
