// The console on the box: serves the command table on a tty (USB gadget serial, UART)
// with line editing for a person. It never gives a shell. A closed or vanished tty (the
// tech unplugged) is reopened until the agent stops; nothing the other end sends can
// crash the agent or grow memory without bound.
import { statSync } from 'node:fs';
import type { Logger } from '../log.ts';
import { execute, render, type ConsoleAgent } from './commands.ts';
import { LineEditor, MAX_LINE_BYTES } from './line-editor.ts';
import { openSerial, type SerialPort } from './serial-port.ts';

export const PROMPT = 'iop> ';

export interface ConsoleServerOptions {
  tty: string;
  baud: number;
  agent: ConsoleAgent;
  log: Logger;
  reopenMs?: number;
}

export class ConsoleServer {
  private port: SerialPort | undefined;
  private readonly editor = new LineEditor(MAX_LINE_BYTES);
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private watch: NodeJS.Timeout | undefined;
  private lastOpenError = '';
  private readonly options: ConsoleServerOptions;
  readonly counters = { opened: 0, commands: 0, errors: 0 };

  constructor(options: ConsoleServerOptions) {
    this.options = options;
  }

  start(): void {
    void this.open();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watch);
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    const { tty, baud, log } = this.options;
    let port: SerialPort;
    try {
      port = await openSerial(tty, baud);
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      if (text !== this.lastOpenError) log.warn(`console: ${text}; trying again every ${this.reopenMs()} ms`);
      this.lastOpenError = text;
      return this.reopenLater();
    }
    if (this.stopped) return void port.close();
    this.lastOpenError = '';
    this.port = port;
    this.counters.opened++;
    this.editor.clear();
    log.info(`console on ${tty} at ${baud} baud`);
    port.on('data', (chunk: Buffer) => this.onData(chunk));
    port.on('error', (err) => log.debug(`console: ${err.message}`));
    port.on('close', () => {
      if (this.port === port) this.port = undefined;
      this.reopenLater();
    });
    this.watchPath(port);
    this.write(`\r\niop-agent console: type help\r\n${PROMPT}`);
  }

  /**
   * A port that is paused for backpressure reads nothing, so it never sees the EIO of a
   * vanished pty or USB gadget and never closes: the path itself is watched instead. When
   * it is gone, or now names another device (replugged), the port is dropped and reopened.
   */
  private watchPath(port: SerialPort): void {
    const identity = (): string | undefined => {
      const st = statSync(this.options.tty, { throwIfNoEntry: false });
      return st ? `${st.dev}:${st.ino}:${st.rdev}` : undefined;
    };
    const opened = identity();
    clearInterval(this.watch);
    this.watch = setInterval(() => {
      if (this.port !== port) return clearInterval(this.watch);
      if (identity() === opened) return;
      clearInterval(this.watch);
      this.options.log.info(`console: ${this.options.tty} went away (unplugged); reopening when it is back`);
      this.port = undefined;
      port.removeAllListeners('close');
      port.on('close', () => {});
      if (port.isOpen) port.close(() => {});
      this.reopenLater();
    }, Math.min(1000, this.reopenMs() * 4));
    this.watch.unref();
  }

  private reopenMs(): number {
    return this.options.reopenMs ?? 1000;
  }

  private reopenLater(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.open(), this.reopenMs());
    this.timer.unref();
  }

  private onData(chunk: Buffer): void {
    let out = '';
    const after: (() => void)[] = [];
    for (const event of this.editor.feed(chunk)) {
      if (event.type === 'echo') { out += event.text; continue; }
      if (event.type === 'cancel') { out += PROMPT; continue; }
      this.counters.commands++;
      const answer = event.type === 'too-long'
        ? { line: render({ ok: false, code: 'LINE_TOO_LONG', error: `line too long (${event.bytes} bytes, at most ${MAX_LINE_BYTES}): ignored; type help` }, false) }
        : this.answer(event.line, after);
      if (answer.line !== undefined) out += answer.line.replace(/\n/g, '\r\n') + '\r\n';
      out += PROMPT;
    }
    this.write(out);
    for (const run of after) run();
  }

  private answer(line: string, after: (() => void)[]): { line?: string } {
    const result = execute(line, this.options.agent);
    if (!result) return {};
    if (!result.answer.ok) this.counters.errors++;
    else if (result.answer.after) after.push(result.answer.after);
    return { line: render(result.answer, result.json) };
  }

  private write(text: string): void {
    const port = this.port;
    if (!port || text === '') return;
    // Backpressure instead of loss: while the other end does not read (a script pasting
    // faster than the baud rate, or a gadget port nobody listens on), stop reading input.
    if (!port.write(text) && !port.isPaused()) {
      port.pause();
      port.once('drain', () => port.resume());
    }
  }
}
