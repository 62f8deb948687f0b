// The gateway's durable record of accepted readings. Per device it keeps two things:
// - the runs it holds: maximal stretches of consecutive readings, each linked to the one
//   before (a reading joins only if it links to the held readings on both sides), which
//   is what receipts say, so a box frees exactly what is here;
// - the chain position: how far the readings have been walked, in order, into the chain
//   consumers see on `verified`. A gap that outlives the gap timeout is walked over
//   (declared missing); a reading that fills it later is still taken, stored and
//   published as `late`.
// Several gateway processes may share one store: every step runs in an IMMEDIATE
// transaction.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { join } from 'node:path';
import { bytesEqual } from '../codec/hex.ts';
import { GENESIS_PREV, type ChainLink } from '../codec/chain.ts';
import { MAX_RECEIPT_RANGES, type ReceiptRange } from '../codec/receipt.ts';
import { IopError, errorMessage } from '../errors.ts';

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

export interface AcceptResult {
  /** `late`: new, below the chain position (its gap had been declared); `broken`: does not link to a held neighbour */
  outcome: 'new' | 'late' | 'duplicate' | 'conflict' | 'broken';
  /** the device's chain position after this step, if any */
  frontier: ChainLink | undefined;
  /** readings that joined the chain in this step, in order */
  linked: LinkedReading[];
  /** readings declared missing because the gap outlived the gap timeout */
  missing: number;
}

type Row = { seq: number; hash: Uint8Array; prev: Uint8Array; message: Uint8Array };
type Statement = 'find' | 'insert' | 'frontier' | 'setFrontier' | 'next' | 'lowestAbove' | 'pendingDevices' | 'count'
  | 'runEndingAt' | 'runStartingAt' | 'insertRun' | 'extendRun' | 'deleteRun' | 'lowestRun' | 'highestRuns';

export class GatewayStore {
  private readonly db: DatabaseSync;
  private readonly s: Record<Statement, StatementSync>;
  private readonly gapTimeoutMs: number;

  constructor(stateDir: string, options: { gapTimeoutMs: number }) {
    const path = join(stateDir, GATEWAY_STORE_FILE);
    this.gapTimeoutMs = options.gapTimeoutMs;
    try {
      this.db = new DatabaseSync(path, { timeout: 10_000 });
      this.db.exec('PRAGMA journal_mode = WAL');
      this.db.exec('PRAGMA synchronous = FULL');
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS readings (device TEXT NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL, prev BLOB NOT NULL,
          message BLOB NOT NULL, received_ms INTEGER NOT NULL, PRIMARY KEY (device, seq)) STRICT;
        CREATE TABLE IF NOT EXISTS frontier (device TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash BLOB NOT NULL) STRICT;
      `);
      this.transaction(() => migrateRuns(this.db));
    } catch (err) {
      throw new IopError('STORE', `cannot open gateway store ${path}: ${errorMessage(err)}`, { path }, { cause: err });
    }
    const db = this.db;
    this.s = {
      find: db.prepare('SELECT hash FROM readings WHERE device = ? AND seq = ?'),
      insert: db.prepare('INSERT INTO readings (device, seq, hash, prev, message, received_ms) VALUES (?, ?, ?, ?, ?, ?)'),
      frontier: db.prepare('SELECT seq, hash FROM frontier WHERE device = ?'),
      setFrontier: db.prepare('INSERT INTO frontier (device, seq, hash) VALUES (?, ?, ?) ON CONFLICT(device) DO UPDATE SET seq = excluded.seq, hash = excluded.hash'),
      next: db.prepare('SELECT seq, hash, prev, message FROM readings WHERE device = ? AND seq = ?'),
      lowestAbove: db.prepare('SELECT seq, prev, received_ms FROM readings WHERE device = ? AND seq > ? ORDER BY seq LIMIT 1'),
      pendingDevices: db.prepare('SELECT DISTINCT r.device FROM runs r LEFT JOIN frontier f ON f.device = r.device WHERE f.seq IS NULL OR r.last > f.seq'),
      count: db.prepare('SELECT count(*) AS n FROM readings WHERE device = ?'),
      runEndingAt: db.prepare('SELECT first FROM runs WHERE device = ? AND last = ?'),
      runStartingAt: db.prepare('SELECT last, hash FROM runs WHERE device = ? AND first = ?'),
      insertRun: db.prepare('INSERT INTO runs (device, first, last, hash) VALUES (?, ?, ?, ?)'),
      extendRun: db.prepare('UPDATE runs SET last = ?, hash = ? WHERE device = ? AND first = ?'),
      deleteRun: db.prepare('DELETE FROM runs WHERE device = ? AND first = ?'),
      lowestRun: db.prepare('SELECT first, last, hash FROM runs WHERE device = ? ORDER BY first LIMIT 1'),
      highestRuns: db.prepare('SELECT first, last, hash FROM runs WHERE device = ? ORDER BY first DESC LIMIT ?'),
    };
  }

  /** Stores a batch of signature-checked readings in one transaction (one fsync). */
  acceptAll(readings: IncomingReading[], nowMs = Date.now()): AcceptResult[] {
    return this.transaction(() => readings.map((reading) => this.acceptOne(reading, nowMs)));
  }

  accept(reading: IncomingReading, nowMs = Date.now()): AcceptResult {
    return this.acceptAll([reading], nowMs)[0]!;
  }

  private acceptOne(reading: IncomingReading, nowMs: number): AcceptResult {
    const { device, seq } = reading;
    const existing = this.s.find.get(device, seq) as { hash: Uint8Array } | undefined;
    if (existing) {
      const outcome = bytesEqual(existing.hash, reading.hash) ? 'duplicate' : 'conflict';
      return { outcome, frontier: this.frontier(device), linked: [], missing: 0 };
    }
    // A reading must link to the held readings on both sides, so that every run is one
    // piece of the device's chain and its last hash vouches for all of it. The held ones
    // stay: a reading that contradicts them is a fork of the chain, not a late copy.
    const before = seq === 0 ? { hash: GENESIS_PREV } : this.s.find.get(device, seq - 1) as { hash: Uint8Array } | undefined;
    const after = this.s.next.get(device, seq + 1) as Row | undefined;
    if ((before && !bytesEqual(reading.prev, before.hash)) || (after && !bytesEqual(after.prev, reading.hash))) {
      return { outcome: 'broken', frontier: this.frontier(device), linked: [], missing: 0 };
    }
    this.s.insert.run(device, seq, reading.hash, reading.prev, reading.message, reading.receivedMs);
    this.joinRuns(reading);
    const frontier = this.frontier(device);
    if (frontier && seq <= frontier.seq) {
      // The chain was walked over this reading's gap: it fills the gap now.
      return { outcome: 'late', frontier, linked: [{ seq, message: reading.message, chain: 'late' }], missing: 0 };
    }
    return { outcome: 'new', ...this.advance(device, nowMs) };
  }

  /** Merges the new reading with the runs ending just below and starting just above it. */
  private joinRuns(reading: IncomingReading): void {
    const { device, seq } = reading;
    const below = this.s.runEndingAt.get(device, seq - 1) as { first: number } | undefined;
    const above = this.s.runStartingAt.get(device, seq + 1) as { last: number; hash: Uint8Array } | undefined;
    if (above) this.s.deleteRun.run(device, seq + 1);
    const last = above ? above.last : seq;
    const hash = above ? above.hash : reading.hash;
    if (below) this.s.extendRun.run(last, hash, device, below.first);
    else this.s.insertRun.run(device, seq, last, hash);
  }

  /** The runs a receipt names: the lowest and the newest, at most MAX_RECEIPT_RANGES in all. */
  heldRanges(device: string): ReceiptRange[] {
    const lowest = this.s.lowestRun.get(device) as ReceiptRange | undefined;
    if (!lowest) return [];
    const newest = (this.s.highestRuns.all(device, MAX_RECEIPT_RANGES - 1) as unknown as ReceiptRange[]).reverse();
    return [lowest, ...newest.filter((r) => r.first > lowest.first)].map((r) => ({ first: r.first, last: r.last, hash: r.hash }));
  }

  /** Devices whose chain waits on a gap, for the periodic gap check. */
  pendingDevices(): string[] {
    return (this.s.pendingDevices.all() as { device: string }[]).map((row) => row.device);
  }

  /** Re-checks a device's chain position, declaring gaps that outlived the timeout. */
  settle(device: string, nowMs = Date.now()): Omit<AcceptResult, 'outcome'> {
    return this.transaction(() => this.advance(device, nowMs));
  }

  /** The chain position: readings up to here were published or declared missing. */
  frontier(device: string): ChainLink | undefined {
    const row = this.s.frontier.get(device) as { seq: number; hash: Uint8Array } | undefined;
    return row ? { seq: row.seq, hash: row.hash } : undefined;
  }

  count(device: string): number {
    return (this.s.count.get(device) as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }

  private advance(device: string, nowMs: number): Omit<AcceptResult, 'outcome'> {
    const linked: LinkedReading[] = [];
    let missing = 0;
    // Before a device's first reading the position sits before seq 0. A device whose
    // early readings this gateway never gets (another gateway took them) starts where
    // its readings start, once the gap timeout has passed: not at the first reading
    // that happens to arrive, which may have overtaken its predecessor.
    const stored = this.frontier(device);
    let frontier: ChainLink = stored ?? { seq: -1, hash: GENESIS_PREV };
    let joining: LinkedReading['chain'] = stored ? 'ok' : 'start';
    for (;;) {
      // Held readings link to their held predecessor (acceptOne), so no check here.
      const next = this.s.next.get(device, frontier.seq + 1) as Row | undefined;
      if (next) {
        frontier = { seq: next.seq, hash: next.hash };
        linked.push({ seq: next.seq, message: next.message, chain: joining });
        joining = 'ok';
        continue;
      }
      const above = this.s.lowestAbove.get(device, frontier.seq) as { seq: number; prev: Uint8Array; received_ms: number } | undefined;
      if (!above || nowMs - above.received_ms < this.gapTimeoutMs) break;
      // The missing readings did not come within the gap timeout: the chain goes on after
      // the gap, which consumers see in the chain status. Receipts still leave it out, so
      // the box keeps those readings and sends them again; they are taken as `late`.
      missing += above.seq - frontier.seq - 1;
      frontier = { seq: above.seq - 1, hash: above.prev };
      joining = joining === 'start' ? 'start' : 'gap';
    }
    if (frontier.seq >= 0) this.s.setFrontier.run(device, frontier.seq, frontier.hash);
    return { frontier: frontier.seq >= 0 ? frontier : undefined, linked, missing };
  }

  private transaction<T>(body: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = body();
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      try { this.db.exec('ROLLBACK'); } catch { /* already ended */ }
      throw err;
    }
  }
}

/**
 * The runs table came with receipts that name runs. A store from before it gets its runs
 * from the readings held, once; a held reading that does not link to the one below it
 * (possible above the chain position then) is dropped as the walk used to drop it.
 */
function migrateRuns(db: DatabaseSync): void {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").get();
  if (exists) return;
  db.exec(`CREATE TABLE runs (device TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (device, first)) STRICT;
    CREATE UNIQUE INDEX runs_by_last ON runs (device, last);`);
  const insert = db.prepare('INSERT INTO runs (device, first, last, hash) VALUES (?, ?, ?, ?)');
  const remove = db.prepare('DELETE FROM readings WHERE device = ? AND seq = ?');
  let run: { device: string; first: number; last: number; hash: Uint8Array } | undefined;
  const unlinked: { device: string; seq: number }[] = [];
  for (const row of db.prepare('SELECT device, seq, hash, prev FROM readings ORDER BY device, seq').iterate() as Iterable<{ device: string; seq: number; hash: Uint8Array; prev: Uint8Array }>) {
    if (run && run.device === row.device && run.last === row.seq - 1) {
      if (!bytesEqual(row.prev, run.hash)) {
        unlinked.push(row);
        continue;
      }
      run.last = row.seq;
      run.hash = row.hash;
      continue;
    }
    if (run) insert.run(run.device, run.first, run.last, run.hash);
    run = { device: row.device, first: row.seq, last: row.seq, hash: row.hash };
  }
  if (run) insert.run(run.device, run.first, run.last, run.hash);
  for (const row of unlinked) remove.run(row.device, row.seq);
}
