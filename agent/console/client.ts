// The tech's side of the console: sends command lines to the box's tty and collects the
// answers. Each answer sits between the box's echo of the line and its next prompt.
import { randomBytes } from 'node:crypto';
import { MAX_LINE_BYTES } from './line-editor.ts';
import { PROMPT } from './server.ts';
import { openSerial, type SerialPort } from './serial-port.ts';

const KILL_LINE = '\x15';
const END = `\r\n${PROMPT}`;

export class ConsoleClient {
  private buffer = '';
  private waiter: (() => void) | undefined;
  private closed = false;
  private readonly port: SerialPort;
  readonly path: string;

  private constructor(port: SerialPort, path: string) {
    this.port = port;
    this.path = path;
    port.setEncoding('latin1');
    port.on('data', (text: string) => { this.buffer += text; this.waiter?.(); });
    port.on('close', () => { this.closed = true; this.waiter?.(); });
    port.on('error', () => {});
  }

  /** Opens the port and waits for the box to answer (throws SerialOpenError if it cannot open). */
  static async open(path: string, baud: number, timeoutMs = 5000): Promise<ConsoleClient> {
    const client = new ConsoleClient(await openSerial(path, baud), path);
    try {
      // Ctrl-U drops what a previous, unplugged session left half-typed; the comment line
      // is answered by a bare prompt, which shows the box is there and where output starts.
      await client.runAll([`#${randomBytes(6).toString('hex')}`], timeoutMs, KILL_LINE);
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  /** Sends one command line; returns the box's answer without echo and prompt. */
  async run(line: string, timeoutMs = 10_000): Promise<string> {
    return (await this.runAll([line], timeoutMs))[0]!;
  }

  /** Sends several lines at once (a script); returns the answers, in order. */
  async runAll(lines: string[], timeoutMs = 60_000, prefix = ''): Promise<string[]> {
    const clean = lines.map((line) => line.replace(/[\x00-\x1f\x7f]/g, ' ').trim());
    // The box echoes at most a line's worth of a longer line.
    const first = `${clean[0]!.slice(0, MAX_LINE_BYTES)}\r\n`;
    this.buffer = '';
    this.port.write(prefix + clean.map((line) => `${line}\r`).join(''));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Whatever came before the echo of the first line (a banner, a stale prompt) is not ours.
      const start = this.buffer.indexOf(first);
      const parts = start < 0 ? [] : this.buffer.slice(start).split(END);
      if (parts.length > lines.length) {
        this.buffer = '';
        return parts.slice(0, lines.length).map((part) => part.slice(part.indexOf('\r\n') + 2).replace(/\r\n/g, '\n'));
      }
      if (this.closed) throw new Error(`${this.path} closed before the box answered`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer from the box on ${this.path} within ${timeoutMs / 1000} s: is the agent running with console.tty on this port, at this baud rate?`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(timer); resolve(); };
      });
      this.waiter = undefined;
    }
  }

  async close(): Promise<void> {
    if (!this.port.isOpen) return;
    await new Promise<void>((resolve) => this.port.close(() => resolve()));
  }
}
