// What every serial LoRa radio link shares: the link header, airtime from the Semtech
// formula, the regional duty-cycle ledger, and a short transmit queue that never puts a
// frame on air over budget. A frame waits in the queue until the ledger allows it (and
// is counted once as held); past the queue's bound new frames are refused and counted.
// The protocol drivers (kiss-link.ts, reyax-link.ts) say how a frame goes to the modem.
import type { Clock, TimerHandle } from '../clock.ts';
import { emptyLinkStats, type Link, type LinkStats, type ReceivedFrame } from '../link.ts';
import type { DriverLog } from '../serial/port.ts';
import { DutyCycle, subBandOf, type Region } from './duty-cycle.ts';
import { decodeLinkFrame, encodeLinkFrame, LINK_HEADER_MAX } from './link-frame.ts';
import { loraAirtimeMs, profileOf, type LoraProfile } from './lora-airtime.ts';

export interface RadioSettings {
  region: Region;
  frequencyHz: number;
  bandwidthHz: number;
  spreadingFactor: number;
  /** 5..8 for 4/5..4/8 */
  codingRate: number;
  txPowerDbm: number;
  preambleSymbols?: number;
}

export interface RadioLinkOptions {
  name: string;
  address: string;
  radio: RadioSettings;
  clock: Clock;
  log: DriverLog;
  /** largest frame the modem takes, link header included */
  maxFrameBytes: number;
  /** frames waiting for the modem or for budget, at most */
  maxQueue?: number;
  /** the duty-cycle window (an hour; shorter only in tests) */
  dutyWindowMs?: number;
}

interface Queued { frame: Uint8Array; airtimeMs: number; held: boolean }

export abstract class RadioLink implements Link {
  readonly name: string;
  readonly mtu: number;
  readonly address: string;
  readonly overhears = true;
  readonly stats: LinkStats = emptyLinkStats();
  /** Rejected input and refused output by kind, for `iop-agent mesh --json`. */
  readonly errors: Record<string, number> = {};
  readonly duty: DutyCycle;
  readonly profile: LoraProfile;
  protected readonly clock: Clock;
  protected readonly log: DriverLog;
  private readonly queue: Queued[] = [];
  private readonly maxQueue: number;
  private handler: ((frame: ReceivedFrame) => void) | undefined;
  private busy = false;
  private waiting: TimerHandle | undefined;
  private up = false;
  /** rises each time the link goes down, so a modem's late answer cannot free the next session's queue */
  private session = 0;
  protected closed = false;

  constructor(options: RadioLinkOptions) {
    this.name = options.name;
    this.address = options.address;
    this.clock = options.clock;
    this.log = options.log;
    this.mtu = options.maxFrameBytes - LINK_HEADER_MAX;
    this.maxQueue = options.maxQueue ?? 16;
    this.profile = profileOf(options.radio);
    const band = subBandOf(options.radio.region, options.radio.frequencyHz, options.radio.bandwidthHz);
    if (band instanceof Error) throw band;
    this.duty = new DutyCycle(band, options.clock, options.dutyWindowMs);
  }

  /** Bytes on air for a link frame of `bytes` (the modem's encoding and overhead). */
  protected abstract bytesOnAir(bytes: number): number;
  /** Hands a frame to the modem; `done` once the modem takes the next. */
  protected abstract transmit(frame: Uint8Array, airtimeMs: number, done: () => void): void;

  get isUp(): boolean {
    return this.up;
  }

  airtimeMs(bytes: number): number {
    return loraAirtimeMs(this.bytesOnAir(bytes + LINK_HEADER_MAX), this.profile);
  }

  budgetMs(): number {
    const queued = this.queue.reduce((sum, q) => sum + q.airtimeMs, 0);
    return Math.max(0, this.duty.budgetMs() - queued);
  }

  send(data: Uint8Array, to?: string): void {
    if (this.closed) return;
    if (data.length > this.mtu) throw new Error(`frame of ${data.length} bytes exceeds the ${this.name} MTU of ${this.mtu}`);
    if (!this.up) return this.count('droppedLinkDown');
    const frame = encodeLinkFrame(this.address, to, data);
    const airtimeMs = loraAirtimeMs(this.bytesOnAir(frame.length), this.profile);
    if (!this.duty.fitsDwell(airtimeMs)) return this.count('refusedOverDwell');
    if (this.queue.length >= this.maxQueue) return this.count('refusedQueueFull');
    this.queue.push({ frame, airtimeMs, held: false });
    this.pump();
  }

  onReceive(handler: (frame: ReceivedFrame) => void): void {
    this.handler = handler;
  }

  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.waiting);
    this.queue.length = 0;
  }

  /** The link's figures for `iop-agent mesh --json`. */
  report(): Record<string, unknown> {
    const allowance = this.duty.allowanceMs;
    return {
      up: this.up,
      band: this.duty.band.name,
      airtimeLastHourMs: Math.round(this.duty.usedMs()),
      allowanceMs: Number.isFinite(allowance) ? allowance : null,
      budgetLeftMs: Number.isFinite(this.budgetMs()) ? Math.round(this.budgetMs()) : null,
      queued: this.queue.length,
      errors: { ...this.errors },
    };
  }

  protected count(kind: string): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }

  protected setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    if (!up) {
      // Frames for a radio that went away are lost like frames in the air; the mesh
      // resends what matters, and readings stay in the store until receipted.
      for (let i = 0; i < this.queue.length; i++) this.count('droppedLinkDown');
      this.queue.length = 0;
      this.busy = false;
      this.session++;
      this.clock.clearTimeout(this.waiting);
      this.waiting = undefined;
    } else this.pump();
  }

  /** A link frame came from the modem. */
  protected deliver(bytes: Uint8Array, rssi?: number, snr?: number): void {
    if (this.closed) return;
    const frame = decodeLinkFrame(bytes);
    if (!frame) return this.count('rxBadLinkFrame');
    if (frame.from === this.address) return this.count('rxOwnAddress');
    this.stats.rxFrames++;
    this.stats.rxBytes += frame.data.length;
    this.handler?.({ data: frame.data, from: frame.from, ...(frame.to !== undefined ? { to: frame.to } : {}), ...(rssi !== undefined ? { rssi } : {}), ...(snr !== undefined ? { snr } : {}) });
  }

  private pump(): void {
    if (!this.up || this.busy || this.closed || this.waiting) return;
    const next = this.queue[0];
    if (!next) return;
    if (!this.duty.allows(next.airtimeMs)) {
      if (!next.held) {
        next.held = true;
        this.count('heldForBudget');
      }
      const wait = this.duty.waitMs(next.airtimeMs);
      this.waiting = this.clock.setTimeout(() => {
        this.waiting = undefined;
        this.pump();
      }, Math.max(10, Math.min(wait, 60_000)));
      return;
    }
    this.queue.shift();
    this.busy = true;
    this.duty.record(next.airtimeMs);
    this.stats.txFrames++;
    this.stats.txBytes += next.frame.length;
    this.stats.airtimeMs += next.airtimeMs;
    const session = this.session;
    this.transmit(next.frame, next.airtimeMs, () => {
      if (session !== this.session) return;
      this.busy = false;
      this.pump();
    });
  }
}
