// The gateway's durable record of accepted readings and, per device, the frontier:
// the highest seq up to which the chain is complete and linked. Several gateway
// processes may share one store: every step runs in an IMMEDIATE transaction.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { join } from 'node:path';
import { bytesEqual } from '../codec/hex.ts';
import { GENESIS_PREV, type ChainLink } from '../codec/chain.ts';
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
  /** how it joined the chain */
  chain: 'start' | 'ok' | 'gap';
}

export interface AcceptResult {
  outcome: 'new' | 'duplicate' | 'conflict';
  /** the device's frontier after this step, if any */
  frontier: ChainLink | undefined;
  /** readings that joined the contiguous chain in this step, in order */
  linked: LinkedReading[];
  /** seqs removed because they did not link to their predecessor */
  broken: number[];
  /** readings declared missing because the gap outlived the gap timeout */
  missing: number;
}

export class GatewayStore {
  private readonly db: DatabaseSync;
  private readonly s: Record<'find' | 'insert' | 'frontier' | 'setFrontier' | 'next' | 'remove' | 'lowestAbove' | 'pendingDevices' | 'count', StatementSync>;
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
      remove: db.prepare('DELETE FROM readings WHERE device = ? AND seq = ?'),
      lowestAbove: db.prepare('SELECT seq, prev, received_ms FROM readings WHERE device = ? AND seq > ? ORDER BY seq LIMIT 1'),
      pendingDevices: db.prepare('SELECT DISTINCT r.device FROM readings r LEFT JOIN frontier f ON f.device = r.device WHERE f.seq IS NULL OR r.seq > f.seq'),
      count: db.prepare('SELECT count(*) AS n FROM readings WHERE device = ?'),
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
    const existing = this.s.find.get(reading.device, reading.seq) as { hash: Uint8Array } | undefined;
    if (existing) {
      const outcome = bytesEqual(existing.hash, reading.hash) ? 'duplicate' : 'conflict';
      return { outcome, frontier: this.frontier(reading.device), linked: [], broken: [], missing: 0 };
    }
    const frontier = this.frontier(reading.device);
    if (frontier && reading.seq <= frontier.seq) {
      // Older than the frontier and not stored: the gateway declared it missing earlier.
      return { outcome: 'conflict', frontier, linked: [], broken: [], missing: 0 };
    }
    this.s.insert.run(reading.device, reading.seq, reading.hash, reading.prev, reading.message, reading.receivedMs);
    return { outcome: 'new', ...this.advance(reading.device, nowMs) };
  }

  /** Devices whose chain waits on a gap, for the periodic gap check. */
  pendingDevices(): string[] {
    return (this.s.pendingDevices.all() as { device: string }[]).map((row) => row.device);
  }

  /** Re-checks a device's frontier, declaring gaps that outlived the timeout. */
  settle(device: string, nowMs = Date.now()): Omit<AcceptResult, 'outcome'> {
    return this.transaction(() => this.advance(device, nowMs));
  }

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
    const broken: number[] = [];
    let missing = 0;
    // Before a device's first reading the frontier sits before seq 0. A device whose
    // early readings this gateway never gets (another gateway took them) starts where
    // its readings start, once the gap timeout has passed: not at the first reading
    // that happens to arrive, which may have overtaken its predecessor.
    const stored = this.frontier(device);
    let frontier: ChainLink = stored ?? { seq: -1, hash: GENESIS_PREV };
    let joining: LinkedReading['chain'] = stored ? 'ok' : 'start';
    for (;;) {
      const next = this.s.next.get(device, frontier.seq + 1) as { seq: number; hash: Uint8Array; prev: Uint8Array; message: Uint8Array } | undefined;
      if (next) {
        if (!bytesEqual(next.prev, frontier.hash)) {
          this.s.remove.run(device, next.seq);
          broken.push(next.seq);
          continue; // the slot is free again; a genuine copy may still come
        }
        frontier = { seq: next.seq, hash: next.hash };
        linked.push({ seq: next.seq, message: next.message, chain: joining });
        joining = 'ok';
        continue;
      }
      const above = this.s.lowestAbove.get(device, frontier.seq) as { seq: number; prev: Uint8Array; received_ms: number } | undefined;
      if (!above || nowMs - above.received_ms < this.gapTimeoutMs) break;
      // The missing readings did not come within the gap timeout: the chain goes on
      // after the gap, which stays visible in the counts and in the chain status.
      missing += above.seq - frontier.seq - 1;
      frontier = { seq: above.seq - 1, hash: above.prev };
      joining = joining === 'start' ? 'start' : 'gap';
    }
    if (frontier.seq >= 0) this.s.setFrontier.run(device, frontier.seq, frontier.hash);
    return { frontier: frontier.seq >= 0 ? frontier : undefined, linked, broken, missing };
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
