// A serial port that stays open: opened with @serialport/stream over the native
// bindings, taken down on a read or write error (EIO/ENXIO when a USB radio is pulled)
// or when its path disappears, and opened again on the same path with backoff, 1 s
// doubling to 30 s, for as long as the link lives.
import { existsSync } from 'node:fs';
import type { SerialPortStream } from '@serialport/stream';
import type { Clock, TimerHandle } from '../clock.ts';

export interface DriverLog {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

export interface SerialLineOptions {
  path: string;
  baud: number;
  clock: Clock;
  log: DriverLog;
  reopenMinMs?: number;
  reopenMaxMs?: number;
  /** how often the path is checked while open (a pulled USB radio may not fail a read at once) */
  watchMs?: number;
}

export interface SerialLineEvents {
  /** the port is open: the protocol starts over (probe, configure) */
  open(): void;
  data(bytes: Uint8Array): void;
  /** the port went away; it is being reopened */
  down(reason: string): void;
}

type Binding = typeof import('@serialport/bindings-cpp').LinuxBinding;
let binding: Promise<Binding> | undefined;

/** The native bindings, loaded on first use (a box without serial links never loads the addon). */
function loadBinding(): Promise<Binding> {
  binding ??= import('@serialport/bindings-cpp').then((m) => m.autoDetect() as Binding);
  return binding;
}

export class SerialLine {
  readonly path: string;
  readonly counters = { opens: 0, downs: 0, openFailures: 0, writeErrors: 0 };
  private readonly options: Required<SerialLineOptions>;
  private readonly events: SerialLineEvents;
  private port: SerialPortStream | undefined;
  private backoffMs: number;
  private timer: TimerHandle | undefined;
  private watch: TimerHandle | undefined;
  private closed = false;
  private lastFailure = '';

  constructor(options: SerialLineOptions, events: SerialLineEvents) {
    this.options = { reopenMinMs: 1000, reopenMaxMs: 30_000, watchMs: 1000, ...options };
    this.path = options.path;
    this.events = events;
    this.backoffMs = this.options.reopenMinMs;
  }

  get isOpen(): boolean {
    return this.port !== undefined;
  }

  start(): void {
    void this.open();
  }

  write(bytes: Uint8Array): boolean {
    if (!this.port) return false;
    this.port.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (err) => {
      if (err) {
        this.counters.writeErrors++;
        this.down(`write failed: ${err.message}`);
      }
    });
    return true;
  }

  close(): void {
    this.closed = true;
    this.options.clock.clearTimeout(this.timer);
    this.options.clock.clearTimeout(this.watch);
    this.release();
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    const { path, baud } = this.options;
    let port: SerialPortStream;
    try {
      const [{ SerialPortStream }, Binding] = await Promise.all([import('@serialport/stream'), loadBinding()]);
      port = new SerialPortStream({ binding: Binding, path, baudRate: baud, autoOpen: false, highWaterMark: 4096 });
      await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      this.counters.openFailures++;
      const message = (err as Error).message;
      // One line per kind of failure, not one per retry.
      if (message !== this.lastFailure) this.options.log.warn(`serial ${path}: cannot open (${message}); retrying with backoff up to ${this.options.reopenMaxMs / 1000} s`);
      this.lastFailure = message;
      this.retry();
      return;
    }
    if (this.closed) {
      port.close(() => {});
      return;
    }
    this.lastFailure = '';
    this.port = port;
    this.counters.opens++;
    this.backoffMs = this.options.reopenMinMs;
    port.on('data', (chunk: Buffer) => this.events.data(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    port.on('error', (err: Error) => this.down(err.message));
    port.on('close', () => this.down('port closed'));
    this.watchPath();
    this.options.log.info(`serial ${path} open at ${baud} baud`);
    this.events.open();
  }

  private watchPath(): void {
    this.watch = this.options.clock.setTimeout(() => {
      if (!this.port) return;
      if (!existsSync(this.path)) this.down('the device path disappeared');
      else this.watchPath();
    }, this.options.watchMs);
  }

  private down(reason: string): void {
    if (!this.port || this.closed) return;
    this.counters.downs++;
    this.release();
    this.options.log.warn(`serial ${this.path}: link down (${reason}); reopening with backoff`);
    this.events.down(reason);
    this.retry();
  }

  private release(): void {
    const port = this.port;
    this.port = undefined;
    this.options.clock.clearTimeout(this.watch);
    if (!port) return;
    port.removeAllListeners();
    port.on('error', () => {});
    if (port.isOpen) port.close(() => {});
    port.destroy();
  }

  private retry(): void {
    if (this.closed) return;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.reopenMaxMs);
    this.timer = this.options.clock.setTimeout(() => void this.open(), wait);
  }
}
