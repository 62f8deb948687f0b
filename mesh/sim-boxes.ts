// What the simulated boxes do with readings, as the agent does: an origin keeps its
// readings until a receipt covers them and sends them to the uplink box in use; an
// uplink box passes each to the gateway (one for the whole mesh) and holds its receipts
// back a while. The simulator (simulation.ts) places the boxes, runs them and measures.
import type { TimerHandle } from '../drivers/clock.ts';
import type { SeededRandom } from '../drivers/sim/random.ts';
import type { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import type { MeshNode } from './node.ts';

/**
 * What the boxes send: by default random bytes (which no compression shrinks); the agent
 * passes real signed readings and gateway receipts.
 */
export interface SimTraffic {
  /** reading number n (from 0) of box `origin` */
  reading(origin: number, n: number): Uint8Array;
  /** a receipt covering box `origin`'s readings up to number n */
  receipt(origin: number, n: number): Uint8Array;
}

/** the size of a random stand-in receipt */
const RECEIPT_BYTES = 150;
/** an uplink box holds a receipt this long, so that it covers the readings that follow */
const RECEIPT_HOLD_MS = 900_000;
/** a reading no receipt covers is sent again after this (doubling each time) */
const RESEND_AFTER_MS = RECEIPT_HOLD_MS + 120_000;
/** a reading sent this long before an early receipt that does not cover it was lost */
const GAP_GRACE_MS = 30_000;
/** readings a box has in flight through the mesh at once */
const MESH_WINDOW = 8;

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Readings made in the measured window, with the time each reached an uplink. */
export class Ledger {
  readonly made = new Map<string, number>();
  readonly arrived = new Map<string, number>();
  private readonly from: number;
  private readonly to: number;
  constructor(from: number, to: number) {
    this.from = from;
    this.to = to;
  }
  make(id: string, at: number): void {
    if (at >= this.from && at < this.to) this.made.set(id, at);
  }
  arrive(id: string, at: number): void {
    if (this.made.has(id) && !this.arrived.has(id)) this.arrived.set(id, at - this.made.get(id)!);
  }
  figures(): { ratio: number; delivered: number; p50: number; p99: number } {
    const latencies = [...this.arrived.values()].sort((a, b) => a - b);
    return { ratio: this.made.size ? this.arrived.size / this.made.size : 1, delivered: this.arrived.size, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  }
}

export function randomTraffic(size: number, random: SeededRandom): SimTraffic {
  const bytes = (origin: number, n: number, length: number) => {
    const out = random.bytes(length);
    new DataView(out.buffer).setUint32(0, origin);
    new DataView(out.buffer).setUint32(4, n);
    return out;
  };
  return { reading: (origin, n) => bytes(origin, n, size), receipt: (origin, n) => bytes(origin, n, RECEIPT_BYTES) };
}

/** Which box and number the readings and receipts on the air stand for. */
export class Catalogue {
  private readonly traffic: SimTraffic;
  private readonly readings = new Map<string, { origin: number; n: number }>();
  private readonly receipts = new Map<string, { origin: number; n: number }>();
  constructor(traffic: SimTraffic) {
    this.traffic = traffic;
  }
  reading(origin: number, n: number): { bytes: Uint8Array; key: string } {
    const bytes = this.traffic.reading(origin, n);
    this.readings.set(Buffer.from(bytes).toString('base64'), { origin, n });
    return { bytes, key: `${origin}/${n}` };
  }
  readingKey(bytes: Uint8Array): string | undefined {
    const r = this.readings.get(Buffer.from(bytes).toString('base64'));
    return r && `${r.origin}/${r.n}`;
  }
  receipt(origin: number, n: number): Uint8Array {
    const bytes = this.traffic.receipt(origin, n);
    this.receipts.set(Buffer.from(bytes).toString('base64'), { origin, n });
    return bytes;
  }
  receiptOf(bytes: Uint8Array): { origin: number; n: number } | undefined {
    return this.receipts.get(Buffer.from(bytes).toString('base64'));
  }
}

/** The gateway behind every uplink box: per origin, the readings it holds and its frontier. */
export class SimGateway {
  private readonly origins = new Map<number, { got: Set<number>; frontier: number }>();
  /** Takes reading n of `origin`; says whether it was a duplicate, and the frontier after it. */
  take(origin: number, n: number): { duplicate: boolean; frontier: number } {
    let o = this.origins.get(origin);
    if (!o) this.origins.set(origin, o = { got: new Set(), frontier: -1 });
    const duplicate = n <= o.frontier || o.got.has(n);
    o.got.add(n);
    while (o.got.has(o.frontier + 1)) o.got.delete(++o.frontier);
    return { duplicate, frontier: o.frontier };
  }
}

/**
 * An uplink box: it publishes what reaches it and passes the gateway's cumulative receipt
 * back, held a while so that one receipt covers several readings, but sent at once when a
 * reading shows that the origin missed the last one or that a reading is missing.
 */
export function serveAsUplink(node: MeshNode, clock: VirtualClock, catalogue: Catalogue, ledger: Ledger, gateway: SimGateway): void {
  const held = new Map<number, { id: Uint8Array; frontier: number; told: boolean; timer: TimerHandle | undefined }>();
  const tell = (origin: number) => {
    const o = held.get(origin)!;
    clock.clearTimeout(o.timer);
    o.timer = undefined;
    if (o.frontier < 0) return;
    o.told = true;
    node.send(o.id, 'receipt', catalogue.receipt(origin, o.frontier));
  };
  node.onMessage((m) => {
    const key = m.type === 'reading' ? catalogue.readingKey(m.payload) : undefined;
    if (!key) return;
    ledger.arrive(key, clock.now());
    const [origin, n] = key.split('/').map(Number) as [number, number];
    const { duplicate, frontier } = gateway.take(origin, n);
    let o = held.get(origin);
    if (!o) held.set(origin, o = { id: m.origin, frontier, told: false, timer: undefined });
    o.frontier = frontier;
    // An uncompressed reading: the origin holds no reference we confirmed, and a receipt
    // carries the confirmation.
    if (duplicate || frontier < n || !o.told || !m.compressed) tell(origin);
    else if (!o.timer) o.timer = clock.setTimeout(() => tell(origin), RECEIPT_HOLD_MS);
  });
}

/** An origin: its queue of readings, one every interval, sent and sent again until a receipt covers them. */
export function sendAsOrigin(node: MeshNode, i: number, world: {
  clock: VirtualClock; random: SeededRandom; catalogue: Catalogue; ledger: Ledger; intervalMs: number;
  /** its readings count toward delivery (it has a radio path to an uplink) */
  counted: boolean;
  made: () => void;
}): void {
  const { clock, random, catalogue, ledger, intervalMs, counted, made } = world;
  // The box's queue, as the agent keeps it: readings wait until a receipt covers them;
  // a few are in flight at once; a late one is sent again, waiting longer each time.
  const queue = new Map<number, { bytes: Uint8Array; sentAt: number; tries: number }>();
  let lastCovered = -1;
  node.onMessage((m) => {
    const covered = m.type === 'receipt' ? catalogue.receiptOf(m.payload) : undefined;
    if (!covered || covered.origin !== i) return;
    for (const n of queue.keys()) if (n <= covered.n) queue.delete(n);
    // The same receipt twice means the uplink box saw a reading arrive after a gap: what
    // is still uncovered and was sent a while ago was lost, and goes again now.
    if (covered.n === lastCovered) {
      for (const entry of queue.values()) if (entry.tries > 0 && entry.sentAt < clock.now() - GAP_GRACE_MS) entry.sentAt = -Infinity;
    }
    lastCovered = covered.n;
    pump();
  });
  let n = 0;
  const pump = () => {
    if (!node.bestUplink()) return;
    let inFlight = 0;
    for (const entry of queue.values()) {
      if (inFlight >= MESH_WINDOW) break;
      inFlight++;
      const wait = RESEND_AFTER_MS * 2 ** Math.min(3, entry.tries - 1);
      if (entry.tries === 0 || entry.sentAt <= clock.now() - wait) {
        if (node.sendToUplink(entry.bytes)) {
          entry.sentAt = clock.now();
          entry.tries++;
        }
      }
    }
  };
  const tick = () => {
    const { bytes, key } = catalogue.reading(i, n);
    made();
    // A box with no radio path to any uplink cannot deliver by any protocol: not counted.
    if (counted) ledger.make(key, clock.now());
    queue.set(n++, { bytes, sentAt: -Infinity, tries: 0 });
    pump();
    clock.setTimeout(tick, intervalMs * (0.9 + 0.2 * random.next()));
  };
  clock.setTimeout(tick, random.next() * intervalMs);
  const retry = () => {
    pump();
    clock.setTimeout(retry, 5000);
  };
  clock.setTimeout(retry, 5000);
}
