// A KISS TNC on a serial port as a mesh link: one mesh frame (with the link header) per
// KISS data frame on port 0. At every open the driver sends RNode's DETECT; an RNode
// answers and is then configured from `radio:` (each setting checked against its echo);
// a plain TNC stays silent and, after a short wait, gets data frames only.
import type { Clock, TimerHandle } from '../clock.ts';
import { encodeKiss, KISS_DATA, KissDeframer, type KissFrame } from '../serial/kiss.ts';
import { SerialLine, type DriverLog } from '../serial/port.ts';
import { configurationFrames, detectFrame, firmwareRequestFrame, parseRNodeFrame, sameEvent, type RNodeEvent } from '../serial/rnode.ts';
import { RadioLink, type RadioSettings } from './radio-link.ts';

export interface KissLinkOptions {
  path: string;
  baud: number;
  radio: RadioSettings;
  address: string;
  clock: Clock;
  log: DriverLog;
  /** largest KISS data frame the TNC takes (one LoRa packet: 255) */
  maxFrameBytes?: number;
  /** how long a silent TNC is given to answer the RNode probe */
  probeMs?: number;
  dutyWindowMs?: number;
  reopenMinMs?: number;
}

const STEP_TIMEOUT_MS = 2000;
/** a TNC hands a frame to its radio within this of the frame's airtime */
const TX_MARGIN_MS = 20;

type Mode = 'closed' | 'probing' | 'configuring' | 'tnc' | 'rnode' | 'failed';

export class KissLink extends RadioLink {
  readonly line: SerialLine;
  readonly deframer: KissDeframer;
  private mode: Mode = 'closed';
  private readonly options: KissLinkOptions;
  private timer: TimerHandle | undefined;
  private steps: { frame: Uint8Array; expect: RNodeEvent }[] = [];
  private signal: { rssi?: number; snr?: number } = {};
  firmware: string | undefined;

  constructor(options: KissLinkOptions) {
    const maxFrameBytes = options.maxFrameBytes ?? 255;
    super({ name: `kiss:${options.path}`, address: options.address, radio: options.radio, clock: options.clock, log: options.log, maxFrameBytes, ...(options.dutyWindowMs ? { dutyWindowMs: options.dutyWindowMs } : {}) });
    this.options = options;
    this.deframer = new KissDeframer(maxFrameBytes + 16);
    this.line = new SerialLine({ path: options.path, baud: options.baud, clock: options.clock, log: options.log, ...(options.reopenMinMs ? { reopenMinMs: options.reopenMinMs } : {}) }, {
      open: () => this.probe(),
      data: (bytes) => this.receive(bytes),
      down: () => this.lineDown(),
    });
  }

  get kind(): 'rnode' | 'tnc' | 'unknown' {
    return this.mode === 'rnode' ? 'rnode' : this.mode === 'tnc' ? 'tnc' : 'unknown';
  }

  start(): void {
    this.line.start();
  }

  override close(): void {
    super.close();
    this.clock.clearTimeout(this.timer);
    this.line.close();
  }

  override report(): Record<string, unknown> {
    return { ...super.report(), type: 'kiss', modem: this.kind, ...(this.firmware ? { firmware: this.firmware } : {}), serial: { ...this.line.counters }, deframer: { ...this.deframer.counters } };
  }

  protected bytesOnAir(bytes: number): number {
    return bytes;
  }

  protected transmit(frame: Uint8Array, airtimeMs: number, done: () => void): void {
    this.line.write(encodeKiss(KISS_DATA, frame));
    // The radio is half duplex and on air for the frame's airtime: the next frame goes
    // to the TNC when this one is out, so the queue (and its budget check) stays here.
    this.clock.setTimeout(done, airtimeMs + TX_MARGIN_MS);
  }

  private probe(): void {
    this.mode = 'probing';
    this.line.write(detectFrame());
    this.after(this.options.probeMs ?? 1000, () => {
      if (this.mode !== 'probing') return;
      this.mode = 'tnc';
      this.log.info(`${this.name}: no RNode answer to the probe: a plain KISS TNC, data frames only`);
      this.setUp(true);
    });
  }

  private receive(bytes: Uint8Array): void {
    for (const frame of this.deframer.push(bytes)) this.onFrame(frame);
  }

  private onFrame(frame: KissFrame): void {
    if (frame.command === KISS_DATA) {
      const { rssi, snr } = this.signal;
      this.signal = {};
      if (this.mode === 'tnc' || this.mode === 'rnode') this.deliver(frame.data, rssi, snr);
      else this.count('rxBeforeReady');
      return;
    }
    // A plain TNC sends nothing but data frames; anything else is an RNode's.
    const event = parseRNodeFrame(frame.command, frame.data);
    if (!event) return this.count('rxUnknownCommand');
    switch (event.t) {
      case 'detect':
        if (this.mode === 'probing') this.configure();
        return;
      case 'firmware':
        this.firmware = `${event.major}.${event.minor}`;
        this.log.info(`${this.name}: RNode firmware ${this.firmware}`);
        return;
      case 'rssi': this.signal.rssi = event.dbm; return;
      case 'snr': this.signal.snr = event.db; return;
      case 'ready': return;
      case 'error':
        this.count(`rnodeError_0x${event.code.toString(16).padStart(2, '0')}`);
        if (this.mode === 'configuring') this.fail(`RNode reported error 0x${event.code.toString(16)} while setting ${this.steps[0]?.expect.t}`);
        return;
      default:
        if (this.mode === 'configuring') this.confirm(event);
    }
  }

  private configure(): void {
    this.mode = 'configuring';
    this.clock.clearTimeout(this.timer);
    this.line.write(firmwareRequestFrame());
    this.steps = configurationFrames(this.options.radio);
    this.nextStep();
  }

  private nextStep(): void {
    const step = this.steps[0];
    if (!step) {
      this.clock.clearTimeout(this.timer);
      this.mode = 'rnode';
      const r = this.options.radio;
      this.log.info(`${this.name}: RNode configured: ${r.frequencyHz} Hz, ${r.bandwidthHz / 1000} kHz, SF${r.spreadingFactor}, 4/${r.codingRate}, ${r.txPowerDbm} dBm`);
      this.setUp(true);
      return;
    }
    this.line.write(step.frame);
    this.after(STEP_TIMEOUT_MS, () => this.fail(`RNode did not confirm ${step.expect.t}`));
  }

  private confirm(event: RNodeEvent): void {
    const step = this.steps[0];
    if (!step) return;
    if (!sameEvent(event, step.expect)) {
      // An RNode answers an out-of-range value with what it actually set.
      if (event.t === step.expect.t) return this.fail(`RNode rejected ${step.expect.t} ${(step.expect as { value: number }).value} (it answered ${(event as { value: number }).value})`);
      return this.count('rxUnexpectedEcho');
    }
    this.steps.shift();
    this.nextStep();
  }

  private fail(reason: string): void {
    this.mode = 'failed';
    this.count('configFailures');
    this.log.warn(`${this.name}: ${reason}; the link stays down (check radio: in the config), trying again in 30 s`);
    this.after(30_000, () => this.probe());
  }

  private lineDown(): void {
    this.mode = 'closed';
    this.clock.clearTimeout(this.timer);
    this.signal = {};
    this.setUp(false);
  }

  private after(ms: number, action: () => void): void {
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(action, ms);
  }
}
