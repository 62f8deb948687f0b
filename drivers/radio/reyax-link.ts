// A REYAX RYLR998/RYLR896 AT modem on a UART as a mesh link. At every open (and when the
// modem stops answering, or resets by itself) the driver resets and configures it, then
// sends each frame as a broadcast `AT+SEND=0,<len>,<base64>` and waits for +OK before the
// next. +ERR=n is counted by name. Received `+RCV` lines bring RSSI and SNR to the mesh.
import type { Clock, TimerHandle } from '../clock.ts';
import { SerialLine, type DriverLog } from '../serial/port.ts';
import { decodePayload, encodePayload, LineSplitter, parseReyaxLine, REYAX_BANDWIDTHS, REYAX_MTU_BYTES, REYAX_OVERHEAD_BYTES, type ReyaxLine } from '../serial/reyax.ts';
import { RadioLink, type RadioSettings } from './radio-link.ts';

export interface ReyaxLinkOptions {
  path: string;
  baud: number;
  radio: RadioSettings;
  networkId: number;
  address: string;
  clock: Clock;
  log: DriverLog;
  dutyWindowMs?: number;
  reopenMinMs?: number;
  /** how long +READY may take after AT+RESET */
  resetTimeoutMs?: number;
  /** how long +OK may take after a setting, and beyond a frame's airtime after AT+SEND */
  replyTimeoutMs?: number;
}

/** Preamble the datasheet recommends (and requires for network ids other than 18). */
export const REYAX_PREAMBLE = 12;
/** A modem that lets this many sends in a row go unanswered is reset. */
const SILENT_SENDS_BEFORE_RESET = 2;

interface Waiter { accept(line: ReyaxLine): boolean; timer: TimerHandle; reject(reason: string): void }

export class ReyaxLink extends RadioLink {
  readonly line: SerialLine;
  readonly splitter = new LineSplitter();
  private readonly options: ReyaxLinkOptions;
  private waiter: Waiter | undefined;
  private configuring = false;
  private silentSends = 0;
  private retry: TimerHandle | undefined;

  constructor(options: ReyaxLinkOptions) {
    const bw = REYAX_BANDWIDTHS[options.radio.bandwidthHz];
    if (bw === undefined) throw new Error(`REYAX modems take bandwidths ${Object.keys(REYAX_BANDWIDTHS).join(', ')} Hz, not ${options.radio.bandwidthHz}`);
    super({
      name: `reyax:${options.path}`, address: options.address, radio: { ...options.radio, preambleSymbols: REYAX_PREAMBLE },
      clock: options.clock, log: options.log, maxFrameBytes: REYAX_MTU_BYTES, ...(options.dutyWindowMs ? { dutyWindowMs: options.dutyWindowMs } : {}),
    });
    this.options = options;
    this.line = new SerialLine({ path: options.path, baud: options.baud, clock: options.clock, log: options.log, ...(options.reopenMinMs ? { reopenMinMs: options.reopenMinMs } : {}) }, {
      open: () => void this.configure(),
      data: (bytes) => this.receive(bytes),
      down: () => this.lineDown(),
    });
  }

  start(): void {
    this.line.start();
  }

  override close(): void {
    super.close();
    this.clock.clearTimeout(this.retry);
    this.waiter?.reject('closed');
    this.line.close();
  }

  override report(): Record<string, unknown> {
    return { ...super.report(), type: 'reyax', serial: { ...this.line.counters }, lines: { ...this.splitter.counters } };
  }

  /** The AT commands that configure the modem, in order. */
  settings(): string[] {
    const r = this.options.radio;
    const address = (Number.parseInt(this.address.slice(0, 4), 16) % 65535) + 1;
    return [
      `AT+ADDRESS=${address}`,
      `AT+NETWORKID=${this.options.networkId}`,
      `AT+BAND=${r.frequencyHz}`,
      `AT+PARAMETER=${r.spreadingFactor},${REYAX_BANDWIDTHS[r.bandwidthHz]},${r.codingRate - 4},${REYAX_PREAMBLE}`,
      `AT+CRFOP=${r.txPowerDbm}`,
    ];
  }

  protected bytesOnAir(bytes: number): number {
    return Math.ceil(bytes / 3) * 4 + REYAX_OVERHEAD_BYTES;
  }

  protected transmit(frame: Uint8Array, airtimeMs: number, done: () => void): void {
    const text = encodePayload(frame);
    this.command(`AT+SEND=0,${text.length},${text}`, airtimeMs + (this.options.replyTimeoutMs ?? 1000)).then(
      () => {
        this.silentSends = 0;
        done();
      },
      (reason: string) => {
        if (reason === 'timeout' && ++this.silentSends >= SILENT_SENDS_BEFORE_RESET) {
          this.log.warn(`${this.name}: the modem stopped answering; resetting it`);
          this.setUp(false);
          void this.configure();
          return;
        }
        done();
      },
    );
  }

  private async configure(): Promise<void> {
    if (this.configuring || this.closed || !this.line.isOpen) return;
    this.configuring = true;
    this.setUp(false);
    this.silentSends = 0;
    try {
      await this.command('AT+RESET', this.options.resetTimeoutMs ?? 3000, 'ready');
      for (const setting of this.settings()) await this.command(setting, this.options.replyTimeoutMs ?? 1000);
      const r = this.options.radio;
      this.log.info(`${this.name}: REYAX modem configured: network ${this.options.networkId}, ${r.frequencyHz} Hz, ${r.bandwidthHz / 1000} kHz, SF${r.spreadingFactor}, 4/${r.codingRate}, ${r.txPowerDbm} dBm`);
      this.configuring = false;
      this.setUp(true);
    } catch (reason) {
      this.configuring = false;
      if (this.closed || !this.line.isOpen) return;
      this.count('configFailures');
      this.log.warn(`${this.name}: configuring the modem failed (${String(reason)}); trying again in 5 s`);
      this.clock.clearTimeout(this.retry);
      this.retry = this.clock.setTimeout(() => void this.configure(), 5000);
    }
  }

  /** Writes one command; resolves on +OK (or +READY), rejects with 'timeout' or the +ERR name. */
  private command(text: string, timeoutMs: number, until: 'ok' | 'ready' = 'ok'): Promise<void> {
    this.waiter?.reject('superseded');
    return new Promise<void>((resolve, reject) => {
      const finish = (error?: string) => {
        this.clock.clearTimeout(waiter.timer);
        if (this.waiter === waiter) this.waiter = undefined;
        if (error === undefined) resolve();
        else reject(error);
      };
      const waiter: Waiter = {
        accept: (line) => {
          if (line.t === until) finish();
          else if (line.t === 'err') {
            this.count(`modemError_${line.name}`);
            finish(line.name);
          } else return line.t === 'ok';
          return true;
        },
        timer: this.clock.setTimeout(() => {
          this.count('replyTimeouts');
          finish('timeout');
        }, timeoutMs),
        reject: (reason) => finish(reason),
      };
      this.waiter = waiter;
      this.line.write(new TextEncoder().encode(`${text}\r\n`));
    });
  }

  private receive(bytes: Uint8Array): void {
    for (const text of this.splitter.push(bytes)) {
      const line = parseReyaxLine(text);
      if (!line) {
        this.count('rxGarbageLine');
        continue;
      }
      if (line.t === 'rcv') {
        const payload = decodePayload(line.data);
        if (payload) this.deliver(payload, line.rssi, line.snr);
        else this.count('rxBadPayload');
        continue;
      }
      if (this.waiter?.accept(line)) continue;
      if (line.t === 'ready' && !this.configuring) {
        // The modem reset by itself (brown-out, watchdog): set it up again.
        this.count('modemResets');
        this.log.warn(`${this.name}: the modem reset by itself; configuring it again`);
        void this.configure();
      } else if (line.t === 'err') this.count(`modemError_${line.name}`);
    }
  }

  private lineDown(): void {
    this.waiter?.reject('link down');
    this.clock.clearTimeout(this.retry);
    this.setUp(false);
  }
}
