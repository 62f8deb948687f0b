// A simulated radio channel: boxes at positions, a range, distance-dependent loss,
// airtime from the LoRa formula, half-duplex radios, listen-before-talk and collisions
// (two frames overlapping at a receiver are both lost). Driven by a VirtualClock.
import type { Clock } from '../clock.ts';
import { emptyLinkStats, type Link, type LinkStats, type ReceivedFrame } from '../link.ts';
import { loraAirtimeMs, SF9_BW250, type LoraProfile } from '../radio/lora-airtime.ts';
import type { SeededRandom } from './random.ts';

export interface MediumOptions {
  clock: Clock;
  random: SeededRandom;
  /** Reach of a transmission, in metres. */
  rangeM: number;
  /** Loss applied to every frame on top of the distance-dependent loss. */
  baseLoss?: number;
  profile?: LoraProfile;
  /** Propagation and processing delay, ms. */
  latencyMs?: number;
  mtu?: number;
}

interface Radio {
  index: number;
  x: number;
  y: number;
  link: SimLink;
  neighbours: { radio: Radio; distance: number }[];
  transmittingUntil: number;
  /** Frames arriving at this radio now: used to find collisions. */
  arriving: Set<Arrival>;
  up: boolean;
}

interface Arrival { end: number; corrupted: boolean }

export class SimMedium {
  readonly options: Required<Omit<MediumOptions, 'clock' | 'random'>> & Pick<MediumOptions, 'clock' | 'random'>;
  private readonly radios: Radio[] = [];
  private readonly cuts = new Set<string>();
  /** Every frame put on the air, for the simulator's accounting. */
  readonly totals = { frames: 0, bytes: 0, airtimeMs: 0, collisions: 0, heard: 0, lostToCollision: 0, lostToFading: 0 };

  constructor(options: MediumOptions) {
    this.options = { baseLoss: 0, profile: SF9_BW250, latencyMs: 5, mtu: 255, ...options };
  }

  /** Adds a radio at (x, y) metres; returns its link. Call `connect()` once all are placed. */
  add(x: number, y: number): SimLink {
    const index = this.radios.length;
    const link = new SimLink(this, index);
    this.radios.push({ index, x, y, link, neighbours: [], transmittingUntil: 0, arriving: new Set(), up: true });
    return link;
  }

  /** Works out who hears whom, on a grid of range-sized cells so that 1,000 radios stay cheap. */
  connect(): void {
    const range = this.options.rangeM;
    const cells = new Map<string, Radio[]>();
    const key = (cx: number, cy: number) => `${cx},${cy}`;
    for (const r of this.radios) {
      const k = key(Math.floor(r.x / range), Math.floor(r.y / range));
      if (!cells.has(k)) cells.set(k, []);
      cells.get(k)!.push(r);
    }
    for (const r of this.radios) {
      r.neighbours = [];
      const cx = Math.floor(r.x / range);
      const cy = Math.floor(r.y / range);
      for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
        for (const other of cells.get(key(cx + dx, cy + dy)) ?? []) {
          if (other === r) continue;
          const distance = Math.hypot(other.x - r.x, other.y - r.y);
          if (distance <= range) r.neighbours.push({ radio: other, distance });
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

  channelBusy(index: number): boolean {
    const radio = this.radios[index]!;
    const now = this.options.clock.now();
    return radio.transmittingUntil > now || [...radio.arriving].some((a) => a.end > now);
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
    for (const { radio, distance } of sender.neighbours) {
      if (!radio.up || this.cuts.has(`${Math.min(index, radio.index)}:${Math.max(index, radio.index)}`)) continue;
      const arrival: Arrival = { end: now + airtime, corrupted: false };
      // A radio that is sending cannot hear; frames that overlap at a receiver destroy each other.
      if (radio.transmittingUntil > now) arrival.corrupted = true;
      for (const other of radio.arriving) {
        if (other.end > now) {
          if (!other.corrupted) this.totals.collisions++;
          other.corrupted = true;
          arrival.corrupted = true;
        }
      }
      radio.arriving.add(arrival);
      const lost = random.next() < this.lossAt(distance);
      clock.setTimeout(() => {
        radio.arriving.delete(arrival);
        if (arrival.corrupted) this.totals.lostToCollision++;
        else if (lost) this.totals.lostToFading++;
        else this.totals.heard++;
        if (arrival.corrupted || lost || !radio.up) return;
        const { rssi, snr } = this.signalAt(distance);
        // A radio hears every frame in range; one for another box comes marked as such.
        radio.link.deliver({ data, from: String(index), rssi, snr, ...(to !== undefined ? { to } : {}) });
      }, airtime + this.options.latencyMs);
    }
    return airtime;
  }

  /** Loss rises from the base loss at 80 % of range to 60 % at the edge. */
  private lossAt(distance: number): number {
    const edge = Math.max(0, (distance / this.options.rangeM - 0.8) / 0.2);
    return 1 - (1 - this.options.baseLoss) * (1 - 0.6 * edge);
  }

  private signalAt(distance: number): { rssi: number; snr: number } {
    const rssi = Math.round(-40 - 25 * Math.log10(Math.max(1, distance)));
    return { rssi, snr: Math.round((rssi + 120) / 3) };
  }
}

/** One box's radio on a SimMedium. Sends wait for a free channel (listen before talk). */
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

  constructor(medium: SimMedium, index: number) {
    this.medium = medium;
    this.index = index;
    this.address = String(index);
    this.mtu = medium.options.mtu;
  }

  airtimeMs(bytes: number): number {
    return loraAirtimeMs(bytes, this.medium.options.profile);
  }

  budgetMs(): number {
    return Infinity;
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
    const attempt = (tries: number) => {
      if (this.closed) return;
      // Listen before talk: a busy channel defers by a random backoff, a few times at most.
      if (tries < 8 && this.medium.channelBusy(this.index)) {
        clock.setTimeout(() => attempt(tries + 1), 20 + random.int(200));
        return;
      }
      const airtime = this.medium.transmit(this.index, frame.data, frame.to);
      this.stats.txFrames++;
      this.stats.txBytes += frame.data.length;
      this.stats.airtimeMs += airtime;
      clock.setTimeout(() => this.next(), airtime + 1);
    };
    attempt(0);
  }
}
