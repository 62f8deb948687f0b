// KISS framing (docs/mesh.md, radio section): FEND 0xC0 opens and closes a frame, the
// first byte is the command (port in the high nibble), FEND and FESC in the body are
// escaped. The deframer resynchronises on the next FEND after anything it rejects, keeps
// at most one frame of bytes, and counts what it throws away.
export const FEND = 0xc0;
export const FESC = 0xdb;
export const TFEND = 0xdc;
export const TFESC = 0xdd;
export const KISS_DATA = 0x00;

export interface KissFrame {
  /** command byte: low nibble the command, high nibble the port */
  command: number;
  data: Uint8Array;
}

export interface KissCounters {
  frames: number;
  /** a FESC followed by something other than TFEND or TFESC */
  badEscape: number;
  /** a frame longer than the deframer keeps */
  oversize: number;
  /** bytes outside any frame (line noise, a TNC's banner) */
  noiseBytes: number;
}

/** One KISS frame: FEND, command, escaped data, FEND. */
export function encodeKiss(command: number, data: Uint8Array): Uint8Array {
  let escapes = 0;
  for (const b of data) if (b === FEND || b === FESC) escapes++;
  const out = new Uint8Array(data.length + escapes + 3);
  let i = 0;
  out[i++] = FEND;
  out[i++] = command & 0xff;
  for (const b of data) {
    if (b === FEND) {
      out[i++] = FESC;
      out[i++] = TFEND;
    } else if (b === FESC) {
      out[i++] = FESC;
      out[i++] = TFESC;
    } else out[i++] = b;
  }
  out[i] = FEND;
  return out;
}

type State = 'outside' | 'frame' | 'escape' | 'discard';

export class KissDeframer {
  readonly counters: KissCounters = { frames: 0, badEscape: 0, oversize: 0, noiseBytes: 0 };
  private readonly maxFrame: number;
  private readonly buffer: Uint8Array;
  private length = 0;
  private state: State = 'outside';

  /** `maxFrame`: the longest frame kept, command byte included. */
  constructor(maxFrame = 1024) {
    this.maxFrame = maxFrame;
    this.buffer = new Uint8Array(maxFrame);
  }

  /** Feeds bytes from the line; returns the frames they completed. */
  push(bytes: Uint8Array): KissFrame[] {
    const frames: KissFrame[] = [];
    for (const b of bytes) {
      if (b === FEND) {
        // A FEND ends whatever was under way: a complete frame, or a discarded one.
        if (this.state === 'frame' && this.length > 0) {
          this.counters.frames++;
          frames.push({ command: this.buffer[0]!, data: this.buffer.slice(1, this.length) });
        } else if (this.state === 'escape') this.counters.badEscape++;
        this.state = 'frame';
        this.length = 0;
        continue;
      }
      switch (this.state) {
        case 'outside':
          this.counters.noiseBytes++;
          break;
        case 'discard':
          break;
        case 'escape':
          if (b === TFEND) this.append(FEND);
          else if (b === TFESC) this.append(FESC);
          else {
            this.counters.badEscape++;
            this.state = 'discard';
            break;
          }
          if (this.state === 'escape') this.state = 'frame';
          break;
        case 'frame':
          if (b === FESC) this.state = 'escape';
          else this.append(b);
          break;
      }
    }
    return frames;
  }

  private append(b: number): void {
    if (this.length >= this.maxFrame) {
      this.counters.oversize++;
      this.state = 'discard';
      return;
    }
    this.buffer[this.length++] = b;
  }
}
