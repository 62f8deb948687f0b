// The gateway's durable record of accepted readings, behind one interface with two
// engines: SQLite in the state dir (the embedded default, store-sqlite.ts) and PostgreSQL
// shared by several gateway processes (store-postgres.ts). Per device it keeps:
// - the runs it holds: maximal stretches of consecutive readings, each linked to the one
//   before (a reading joins only if it links to the held readings on both sides), which
//   is what receipts say, so a box frees exactly what is here;
// - the chain position: how far the readings have been walked, in order, into the chain
//   consumers see on `verified`. A gap that outlives the gap timeout is walked over
//   (declared missing); a reading that fills it later is still taken, stored and
//   published as `late`.
// The rules live here once (DeviceLedger): an engine loads a device's chain position and
// runs inside its transaction, the rules decide, and the engine writes what changed in
// the same transaction. An engine makes sure that no two transactions work on one device
// at once (SQLite: one writer; PostgreSQL: the device's row locked).
import type { ChainLink } from '../codec/chain.ts';
import { GENESIS_PREV } from '../codec/chain.ts';
import { bytesEqual } from '../codec/hex.ts';
import { MAX_RECEIPT_RANGES, type ReceiptRange } from '../codec/receipt.ts';
import type { GatewayMembership } from './affinity.ts';
import type { PairingStore } from './pairing-store.ts';

export const GATEWAY_STORE_FILE = 'gateway.db';

export interface IncomingReading {
  device: string;
  seq: number;
  hash: Uint8Array;
  prev: Uint8Array;
  message: Uint8Array;
  receivedMs: number;
}

export interface LinkedReading {
  seq: number;
  message: Uint8Array;
  /** how it joined the chain: `late` fills a gap the chain had been walked over */
  chain: 'start' | 'ok' | 'gap' | 'late';
}

export interface StepResult {
  /** the device's chain position after this step, if any */
  frontier: ChainLink | undefined;
  /** readings that joined the chain in this step, in order */
  linked: LinkedReading[];
  /** readings declared missing because the gap outlived the gap timeout */
  missing: number;
}

export interface AcceptResult extends StepResult {
  /** `late`: new, below the chain position (its gap had been declared); `broken`: does not link to a held neighbour */
  outcome: 'new' | 'late' | 'duplicate' | 'conflict' | 'broken';
}

/** What the gateway needs of a store; every method is one transaction. */
export interface GatewayStore {
  readonly engine: 'sqlite' | 'postgres';
  /** Stores a batch of signature-checked readings in one transaction (one commit). */
  acceptAll(readings: IncomingReading[], nowMs?: number): Promise<AcceptResult[]>;
  accept(reading: IncomingReading, nowMs?: number): Promise<AcceptResult>;
  /** The runs a receipt names: the lowest and the newest, at most MAX_RECEIPT_RANGES in all. */
  heldRanges(device: string): Promise<ReceiptRange[]>;
  /** Devices whose chain waits on a gap, for the periodic gap check. */
  pendingDevices(): Promise<string[]>;
  /** Re-checks a device's chain position, declaring gaps that outlived the timeout. */
  settle(device: string, nowMs?: number): Promise<StepResult>;
  /** The chain position: readings up to here were published or declared missing. */
  frontier(device: string): Promise<ChainLink | undefined>;
  count(device: string): Promise<number>;
  /** Which gateways share this store now (PostgreSQL), for device affinity; SQLite has none. */
  membership?(): GatewayMembership;
  /** Where pairings are kept beside these readings (the state dir's pairings.json for SQLite). */
  pairings(stateDir: string): PairingStore;
  close(): Promise<void>;
}

export interface Run { first: number; last: number; hash: Uint8Array }
export interface HeldRow { seq: number; hash: Uint8Array; prev: Uint8Array; message: Uint8Array; receivedMs: number }

/** What an engine hands the rules for one device, read inside its transaction. */
export interface DeviceSnapshot {
  frontier: ChainLink | undefined;
  /**
   * The device's runs, any order: every run, or (PostgreSQL) those around the chain
   * position and the batch's readings, and the first above each: every decision before
   * the chain is walked over a gap looks only there.
   */
  runs: Run[];
  /** a held reading, read on demand (the runs tell whether it is held) */
  row(seq: number): Promise<HeldRow | undefined>;
  /**
   * With only some runs given: the lowest run starting above `seq` in the store. Asked
   * after the chain was walked over a gap, where the runs given may leave one out.
   */
  runAbove?(seq: number): Promise<Run | undefined>;
}

/** What a step changed, for the engine to write in the same transaction. */
export interface DeviceChanges {
  device: string;
  inserted: HeldRow[];
  /** runs to delete, by first */
  deletedRuns: number[];
  /** runs to insert or replace (keyed by first) */
  upsertedRuns: Run[];
  /** the new chain position, when it moved */
  frontier: ChainLink | undefined;
}

/** One device's held state during a transaction: the rules of accepting and walking. */
export class DeviceLedger {
  readonly device: string;
  private frontierLink: ChainLink | undefined;
  private frontierMoved = false;
  /** by first, in the order of first */
  private runs: Run[];
  private readonly originalRuns: Map<number, Run>;
  private readonly rows = new Map<number, HeldRow>();
  private readonly inserted: HeldRow[] = [];
  private readonly load: (seq: number) => Promise<HeldRow | undefined>;
  private readonly runAboveInStore: ((seq: number) => Promise<Run | undefined>) | undefined;
  /** set once the chain was walked over a gap: runs above may be missing from those given */
  private jumped = false;
  private readonly gapTimeoutMs: number;

  constructor(device: string, snapshot: DeviceSnapshot, gapTimeoutMs: number) {
    this.device = device;
    this.frontierLink = snapshot.frontier;
    this.runs = [...snapshot.runs].sort((a, b) => a.first - b.first);
    this.originalRuns = new Map(snapshot.runs.map((r) => [r.first, r]));
    this.load = (seq) => snapshot.row(seq);
    this.runAboveInStore = snapshot.runAbove?.bind(snapshot);
    this.gapTimeoutMs = gapTimeoutMs;
  }

  get frontier(): ChainLink | undefined {
    return this.frontierLink;
  }

  async accept(reading: IncomingReading, nowMs: number): Promise<AcceptResult> {
    const { seq } = reading;
    if (this.runAt(seq)) {
      const outcome = bytesEqual(await this.hashAt(seq), reading.hash) ? 'duplicate' : 'conflict';
      return { outcome, frontier: this.frontierLink, linked: [], missing: 0 };
    }
    // A reading must link to the held readings on both sides, so that every run is one
    // piece of the device's chain and its last hash vouches for all of it. The held ones
    // stay: a reading that contradicts them is a fork of the chain, not a late copy.
    const before = seq === 0 ? GENESIS_PREV : this.runAt(seq - 1) ? await this.hashAt(seq - 1) : undefined;
    const after = this.runAt(seq + 1) ? await this.row(seq + 1) : undefined;
    if ((before && !bytesEqual(reading.prev, before)) || (after && !bytesEqual(after.prev, reading.hash))) {
      return { outcome: 'broken', frontier: this.frontierLink, linked: [], missing: 0 };
    }
    const row: HeldRow = { seq, hash: reading.hash, prev: reading.prev, message: reading.message, receivedMs: reading.receivedMs };
    this.rows.set(seq, row);
    this.inserted.push(row);
    this.joinRuns(row);
    const frontier = this.frontierLink;
    if (frontier && seq <= frontier.seq) {
      // The chain was walked over this reading's gap: it fills the gap now.
      return { outcome: 'late', frontier, linked: [{ seq, message: reading.message, chain: 'late' }], missing: 0 };
    }
    return { outcome: 'new', ...await this.advance(nowMs) };
  }

  async advance(nowMs: number): Promise<StepResult> {
    const linked: LinkedReading[] = [];
    let missing = 0;
    // Before a device's first reading the position sits before seq 0. A device whose
    // early readings this gateway never gets (another gateway took them) starts where
    // its readings start, once the gap timeout has passed: not at the first reading
    // that happens to arrive, which may have overtaken its predecessor.
    const stored = this.frontierLink;
    let frontier: ChainLink = stored ?? { seq: -1, hash: GENESIS_PREV };
    let joining: LinkedReading['chain'] = stored ? 'ok' : 'start';
    for (;;) {
      // Held readings link to their held predecessor (accept), so no check here.
      if (this.runAt(frontier.seq + 1)) {
        const next = (await this.row(frontier.seq + 1))!;
        frontier = { seq: next.seq, hash: next.hash };
        linked.push({ seq: next.seq, message: next.message, chain: joining });
        joining = 'ok';
        continue;
      }
      const aboveRun = await this.runAbove(frontier.seq);
      const above = aboveRun && await this.row(aboveRun.first);
      if (!above || nowMs - above.receivedMs < this.gapTimeoutMs) break;
      // The missing readings did not come within the gap timeout: the chain goes on after
      // the gap, which consumers see in the chain status. Receipts still leave it out, so
      // the box keeps those readings and sends them again; they are taken as `late`.
      missing += above.seq - frontier.seq - 1;
      frontier = { seq: above.seq - 1, hash: above.prev };
      joining = joining === 'start' ? 'start' : 'gap';
      this.jumped = true;
    }
    if (frontier.seq >= 0 && (!stored || frontier.seq !== stored.seq)) {
      this.frontierLink = frontier;
      this.frontierMoved = true;
    }
    return { frontier: frontier.seq >= 0 ? frontier : undefined, linked, missing };
  }

  changes(): DeviceChanges {
    const current = new Map(this.runs.map((r) => [r.first, r]));
    const deletedRuns = [...this.originalRuns.keys()].filter((first) => !current.has(first));
    const upsertedRuns = this.runs.filter((r) => {
      const before = this.originalRuns.get(r.first);
      return !before || before.last !== r.last || !bytesEqual(before.hash, r.hash);
    });
    return { device: this.device, inserted: this.inserted, deletedRuns, upsertedRuns, frontier: this.frontierMoved ? this.frontierLink : undefined };
  }

  /** The lowest held run starting above `seq`; from the store too once the walk jumped a gap. */
  private async runAbove(seq: number): Promise<Run | undefined> {
    const held = this.runs[this.indexAbove(seq)];
    if (!this.jumped || !this.runAboveInStore) return held;
    const stored = await this.runAboveInStore(seq);
    if (!stored || (held && held.first <= stored.first)) return held;
    // One the given runs left out: it is the store's as it was, not a change of this step.
    this.originalRuns.set(stored.first, stored);
    this.runs.splice(this.indexAbove(stored.first - 1), 0, stored);
    return stored;
  }

  private runAt(seq: number): Run | undefined {
    const i = this.indexAbove(seq) - 1;
    const run = this.runs[i];
    return run && seq <= run.last ? run : undefined;
  }

  /**
   * Where a run starting at `seq` would go: the first run starting above it. Binary: a
   * device's runs are one while readings come in order, but hundreds while two gateways
   * drain one box's backlog in turns, each holding every other reading until the other commits.
   */
  private indexAbove(seq: number): number {
    let low = 0;
    let high = this.runs.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.runs[mid]!.first <= seq) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** A run's last hash is in the run: no read for the usual neighbour below. */
  private async hashAt(seq: number): Promise<Uint8Array> {
    const run = this.runAt(seq)!;
    return run.last === seq ? run.hash : (await this.row(seq))!.hash;
  }

  private async row(seq: number): Promise<HeldRow | undefined> {
    let row = this.rows.get(seq);
    if (!row) {
      row = await this.load(seq);
      if (row) this.rows.set(seq, row);
    }
    return row;
  }

  /** Merges the new reading with the runs ending just below and starting just above it. */
  private joinRuns(row: HeldRow): void {
    const at = this.indexAbove(row.seq); // the run above, if any, is here; the one below just before
    const below = this.runs[at - 1]?.last === row.seq - 1 ? this.runs[at - 1] : undefined;
    const above = this.runs[at]?.first === row.seq + 1 ? this.runs[at] : undefined;
    const last = above ? above.last : row.seq;
    const hash = above ? above.hash : row.hash;
    const joined = below ? { first: below.first, last, hash } : { first: row.seq, last, hash };
    if (below) this.runs.splice(at - 1, above ? 2 : 1, joined);
    else this.runs.splice(at, above ? 1 : 0, joined);
  }
}

/** The runs a receipt names, from a device's lowest run and its newest ones (newest first). */
export function receiptRanges(lowest: Run | undefined, newestFirst: Run[]): ReceiptRange[] {
  if (!lowest) return [];
  const newest = newestFirst.slice(0, MAX_RECEIPT_RANGES - 1).reverse();
  return [lowest, ...newest.filter((r) => r.first > lowest.first)].map((r) => ({ first: r.first, last: r.last, hash: r.hash }));
}

/**
 * Runs the rules over a batch: one ledger per device, loaded on first use, in the order
 * the readings came. `open` loads a device inside the engine's transaction.
 */
export async function acceptBatch(
  readings: IncomingReading[], nowMs: number, gapTimeoutMs: number,
  open: (device: string) => Promise<DeviceSnapshot>,
): Promise<{ results: AcceptResult[]; ledgers: DeviceLedger[] }> {
  const ledgers = new Map<string, DeviceLedger>();
  const results: AcceptResult[] = [];
  for (const reading of readings) {
    let ledger = ledgers.get(reading.device);
    if (!ledger) {
      ledger = new DeviceLedger(reading.device, await open(reading.device), gapTimeoutMs);
      ledgers.set(reading.device, ledger);
    }
    results.push(await ledger.accept(reading, nowMs));
  }
  return { results, ledgers: [...ledgers.values()] };
}

/** A database URL without its password, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@]*@/, '$1:***@');
}

/** Opens the store a gateway was given: PostgreSQL for a postgres:// URL, else SQLite in the state dir. */
export async function openGatewayStore(options: { stateDir: string; db?: string | undefined; gapTimeoutMs: number; affinity?: boolean }): Promise<GatewayStore> {
  if (options.db) {
    const { openPostgresStore } = await import('./store-postgres.ts');
    // With device affinity a device's readings reach one gateway: no batch split (store-postgres.ts).
    return openPostgresStore(options.db, { gapTimeoutMs: options.gapTimeoutMs, splitBatches: options.affinity === false });
  }
  const { SqliteGatewayStore } = await import('./store-sqlite.ts');
  return new SqliteGatewayStore(options.stateDir, { gapTimeoutMs: options.gapTimeoutMs });
}
