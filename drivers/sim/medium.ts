// A simulated radio channel: boxes at positions, a log-distance path loss, LoRa airtime,
// half-duplex radios, listen-before-talk, interference with a capture effect, and the
// regional duty cycle on every radio. Driven by a VirtualClock. What it models and what
// it does not: docs/mesh.md section 8.
import type { Clock } from '../clock.ts';
import { emptyLinkStats, type Link, type LinkStats, type ReceivedFrame } from '../link.ts';
import { DutyCycle, subBandOf, type Region, type SubBand } from '../radio/duty-cycle.ts';
import { loraAirtimeMs, SF9_BW250, type LoraProfile } from '../radio/lora-airtime.ts';
import type { SeededRandom } from './random.ts';

export interface MediumOptions {
  clock: Clock;
  random: SeededRandom;
  /** Reach of a transmission, in metres: where the signal falls to the receiver's sensitivity. */
  rangeM: number;
  /** Loss applied to every frame on top of the distance-dependent loss. */
  baseLoss?: number;
  profile?: LoraProfile;
  /** Propagation and processing delay, ms. */
  latencyMs?: number;
  mtu?: number;
  /** The channel, for the duty-cycle rule (default EU868, 869.525 MHz: the 10 % sub-band). */
  region?: Region;
  frequencyHz?: number;
  /** Enforce the sub-band's duty cycle and dwell time on every radio (default true). */
  dutyCycle?: boolean;
  /** A frame survives an overlap when this much stronger than the sum of the others (dB; default 6). */
  captureDb?: number;
  /** Frames this far below sensitivity still add interference (dB; default 10). */
  interferenceDb?: number;
}

interface Radio {
  index: number;
  x: number;
  y: number;
  link: SimLink;
  /** radios that can decode this one */
  neighbours: Peer[];
  /** radios beyond decoding range that this one still disturbs */
  interfered: Peer[];
  transmittingUntil: number;
  /** Frames arriving at this radio now (decodable or not): what each suffers from the others. */
  arriving: Set<Arrival>;
  up: boolean;
}

interface Peer { radio: Radio; distance: number; powerMw: number }

interface Arrival {
  end: number;
  powerMw: number;
  /** the most power of other frames at this receiver at any moment of this frame */
  interferenceMw: number;
  decodable: boolean;
  /** the receiver transmitted during this frame */
  deaf: boolean;
}

/** Path loss exponent of the log-distance model (suburban, antennas near the ground). */
const PATH_LOSS_EXPONENT = 2.5;

function rssiAt(distance: number): number {
  return -40 - 10 * PATH_LOSS_EXPONENT * Math.log10(Math.max(1, distance));
}

type Options = Required<Omit<MediumOptions, 'clock' | 'random'>> & Pick<MediumOptions, 'clock' | 'random'>;

export class SimMedium {
  readonly options: Options;
  /** The sub-band the channel lies in (its duty cycle and dwell time). */
  readonly band: SubBand;
  private readonly radios: Radio[] = [];
  private readonly cuts = new Set<string>();
  private readonly captureRatio: number;
  /** Every frame put on the air, for the simulator's accounting. */
  readonly totals = {
    frames: 0, bytes: 0, airtimeMs: 0, heard: 0,
    /** receptions lost because other frames were too strong (no capture) */
    lostToCollision: 0,
    /** receptions lost because the receiver was transmitting */
    lostToHalfDuplex: 0,
    lostToFading: 0,
    /** frames a radio never sent: longer than the sub-band's dwell time or whole allowance */
    refused: 0,
  };

  constructor(options: MediumOptions) {
    this.options = {
      baseLoss: 0, profile: SF9_BW250, latencyMs: 5, mtu: 255, region: 'EU868', frequencyHz: 869_525_000,
      dutyCycle: true, captureDb: 6, interferenceDb: 10, ...options,
    };
    const band = subBandOf(this.options.region, this.options.frequencyHz, this.options.profile.bandwidthHz);
    if (band instanceof Error) throw band;
    this.band = band;
    this.captureRatio = 10 ** (this.options.captureDb / 10);
  }

  /** Adds a radio at (x, y) metres; returns its link. Call `connect()` once all are placed. */
  add(x: number, y: number): SimLink {
    const index = this.radios.length;
    const link = new SimLink(this, index);
    this.radios.push({ index, x, y, link, neighbours: [], interfered: [], transmittingUntil: 0, arriving: new Set(), up: true });
    return link;
  }

  /** How far a radio still disturbs others (where its signal is interferenceDb below sensitivity). */
  get interferenceRangeM(): number {
    return this.options.rangeM * 10 ** (this.options.interferenceDb / (10 * PATH_LOSS_EXPONENT));
  }

  /** Works out who hears and who disturbs whom, on a grid of cells so that 1,000 radios stay cheap. */
  connect(): void {
    const range = this.options.rangeM;
    const reach = this.interferenceRangeM;
    const cells = new Map<string, Radio[]>();
    const key = (cx: number, cy: number) => `${cx},${cy}`;
    for (const r of this.radios) {
      const k = key(Math.floor(r.x / reach), Math.floor(r.y / reach));
      if (!cells.has(k)) cells.set(k, []);
      cells.get(k)!.push(r);
    }
    for (const r of this.radios) {
      r.neighbours = [];
      r.interfered = [];
      const cx = Math.floor(r.x / reach);
      const cy = Math.floor(r.y / reach);
      for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
        for (const other of cells.get(key(cx + dx, cy + dy)) ?? []) {
          if (other === r) continue;
          const distance = Math.hypot(other.x - r.x, other.y - r.y);
          const peer = { radio: other, distance, powerMw: 10 ** (rssiAt(distance) / 10) };
          if (distance <= range) r.neighbours.push(peer);
          else if (distance <= reach) r.interfered.push(peer);
        }
      }
    }
  }

  /** Radios within range of radio `index` (the physical neighbourhood). */
  inRange(index: number): number[] {
    return this.radios[index]!.neighbours.map((n) => n.radio.index);
  }

  /** Silences the path between two radios in both directions (a faded neighbour). */
  cut(a: number, b: number): void {
    this.cuts.add(`${Math.min(a, b)}:${Math.max(a, b)}`);
  }

  setUp(index: number, up: boolean): void {
    this.radios[index]!.up = up;
  }

  /** Listen before talk: the radio is sending, or hears a frame it could decode. */
  channelBusy(index: number): boolean {
    const radio = this.radios[index]!;
    const now = this.options.clock.now();
    if (radio.transmittingUntil > now) return true;
    for (const a of radio.arriving) if (a.decodable && a.end > now) return true;
    return false;
  }

  /** Puts a frame on the air from radio `index`; returns its airtime in ms. */
  transmit(index: number, data: Uint8Array, to: string | undefined): number {
    const { clock, random } = this.options;
    const sender = this.radios[index]!;
    const airtime = loraAirtimeMs(data.length, this.options.profile);
    const now = clock.now();
    sender.transmittingUntil = now + airtime;
    this.totals.frames++;
    this.totals.bytes += data.length;
    this.totals.airtimeMs += airtime;
    if (!sender.up) return airtime;
    // Half duplex: a radio that starts sending stops receiving what was arriving.
    for (const a of sender.arriving) if (a.end > now) a.deaf = true;
    const reached = (peer: Peer) => peer.radio.up && !this.cuts.has(`${Math.min(index, peer.radio.index)}:${Math.max(index, peer.radio.index)}`);
    for (const peer of sender.interfered) if (reached(peer)) this.arrive(peer.radio, now + airtime, peer.powerMw, false);
    for (const peer of sender.neighbours) {
      if (!reached(peer)) continue;
      const { radio, distance } = peer;
      const arrival = this.arrive(radio, now + airtime, peer.powerMw, true);
      const lost = random.next() < this.lossAt(distance);
      clock.setTimeout(() => {
        radio.arriving.delete(arrival);
        const drowned = arrival.powerMw < this.captureRatio * arrival.interferenceMw;
        if (arrival.deaf) this.totals.lostToHalfDuplex++;
        else if (drowned) this.totals.lostToCollision++;
        else if (lost) this.totals.lostToFading++;
        else this.totals.heard++;
        if (arrival.deaf || drowned || lost || !radio.up) return;
        const { rssi, snr } = this.signalAt(distance);
        // A radio hears every frame in range; one for another box comes marked as such.
        radio.link.deliver({ data, from: String(index), rssi, snr, ...(to !== undefined ? { to } : {}) });
      }, airtime + this.options.latencyMs);
    }
    return airtime;
  }

  /**
   * A frame starts arriving at a radio: it and every frame already arriving disturb each
   * other. Frames only add power when they start, so the worst moment of each frame is
   * right after some frame started: updating then finds it exactly.
   */
  private arrive(radio: Radio, end: number, powerMw: number, decodable: boolean): Arrival {
    const now = this.options.clock.now();
    let total = 0;
    for (const other of radio.arriving) {
      // Frames nobody decodes have no timer of their own: they go when next looked at.
      if (other.end <= now) {
        if (!other.decodable) radio.arriving.delete(other);
        continue;
      }
      total += other.powerMw;
    }
    for (const other of radio.arriving) {
      if (other.end > now) other.interferenceMw = Math.max(other.interferenceMw, total - other.powerMw + powerMw);
    }
    const arrival: Arrival = { end, powerMw, interferenceMw: total, decodable, deaf: radio.transmittingUntil > now };
    radio.arriving.add(arrival);
    return arrival;
  }

  /** Loss rises from the base loss at 80 % of range to 60 % at the edge. */
  private lossAt(distance: number): number {
    const edge = Math.max(0, (distance / this.options.rangeM - 0.8) / 0.2);
    return 1 - (1 - this.options.baseLoss) * (1 - 0.6 * edge);
  }

  private signalAt(distance: number): { rssi: number; snr: number } {
    const rssi = Math.round(rssiAt(distance));
    return { rssi, snr: Math.round((rssi + 120) / 3) };
  }
}

/**
 * One box's radio on a SimMedium. Sends wait for a free channel (listen before talk) and
 * for the duty-cycle budget: a frame goes on air only when its airtime fits the rolling
 * hour's allowance, one longer than the dwell time or the whole allowance never does.
 */
export class SimLink implements Link {
  readonly name = 'sim';
  readonly overhears = true;
  readonly mtu: number;
  readonly address: string;
  readonly stats: LinkStats = emptyLinkStats();
  private readonly medium: SimMedium;
  private readonly index: number;
  private readonly queue: { data: Uint8Array; to: string | undefined }[] = [];
  private sending = false;
  private handler: ((frame: ReceivedFrame) => void) | undefined;
  private closed = false;
  /** the regional rule this radio keeps (none when the medium does not enforce it) */
  readonly duty: DutyCycle | undefined;

  constructor(medium: SimMedium, index: number) {
    this.medium = medium;
    this.index = index;
    this.address = String(index);
    this.mtu = medium.options.mtu;
    this.duty = medium.options.dutyCycle ? new DutyCycle(medium.band, medium.options.clock) : undefined;
  }

  airtimeMs(bytes: number): number {
    return loraAirtimeMs(bytes, this.medium.options.profile);
  }

  budgetMs(): number {
    return this.duty?.budgetMs() ?? Infinity;
  }

  send(data: Uint8Array, to?: string): void {
    if (this.closed) return;
    if (data.length > this.mtu) throw new Error(`frame of ${data.length} bytes exceeds the link MTU of ${this.mtu}`);
    this.queue.push({ data, to });
    if (!this.sending) this.next();
  }

  onReceive(handler: (frame: ReceivedFrame) => void): void {
    this.handler = handler;
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  deliver(frame: ReceivedFrame): void {
    if (this.closed) return;
    this.stats.rxFrames++;
    this.stats.rxBytes += frame.data.length;
    this.handler?.(frame);
  }

  private next(): void {
    const { clock, random } = this.medium.options;
    const frame = this.queue.shift();
    if (!frame) {
      this.sending = false;
      return;
    }
    this.sending = true;
    const airtime = this.airtimeMs(frame.data.length);
    const attempt = (tries: number) => {
      if (this.closed) return;
      const wait = this.duty?.waitMs(airtime) ?? 0;
      if (wait === Infinity) {
        this.medium.totals.refused++;
        this.next();
        return;
      }
      if (wait > 0) {
        clock.setTimeout(() => attempt(tries), wait);
        return;
      }
      // Listen before talk: a busy channel defers by a random backoff, a few times at most.
      if (tries < 8 && this.medium.channelBusy(this.index)) {
        clock.setTimeout(() => attempt(tries + 1), 20 + random.int(200));
        return;
      }
      this.medium.transmit(this.index, frame.data, frame.to);
      this.duty?.record(airtime);
      this.stats.txFrames++;
      this.stats.txBytes += frame.data.length;
      this.stats.airtimeMs += airtime;
      clock.setTimeout(() => this.next(), airtime + 1);
    };
    attempt(0);
  }
}
