// The gateway store in SQLite (node:sqlite), the embedded default: one file in the state
// dir. Several gateway processes on one machine may share it: every step runs in an
// IMMEDIATE transaction, so one writer at a time works on any device.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { join } from 'node:path';
import { bytesEqual } from '../codec/hex.ts';
import type { ChainLink } from '../codec/chain.ts';
import type { ReceiptRange } from '../codec/receipt.ts';
import { MAX_RECEIPT_RANGES } from '../codec/receipt.ts';
import { IopError, errorMessage } from '../errors.ts';
import {
  DeviceLedger, GATEWAY_STORE_FILE, acceptBatch, receiptRanges,
  type AcceptResult, type DeviceChanges, type DeviceSnapshot, type GatewayStore, type HeldRow, type IncomingReading, type Run, type StepResult,
} from './store.ts';
import { FilePairingStore, type PairingStore } from './pairing-store.ts';

type Statement = 'row' | 'insert' | 'frontier' | 'setFrontier' | 'runs' | 'pendingDevices' | 'count'
  | 'upsertRun' | 'deleteRun' | 'lowestRun' | 'highestRuns';

export class SqliteGatewayStore implements GatewayStore {
  readonly engine = 'sqlite';
  private readonly db: DatabaseSync;
  private readonly s: Record<Statement, StatementSync>;
  private readonly gapTimeoutMs: number;
  /** one transaction at a time on this connection, whatever awaits inside it */
  private queue: Promise<unknown> = Promise.resolve();

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
      this.db.exec('BEGIN IMMEDIATE');
      try {
        migrateRuns(this.db);
        this.db.exec('COMMIT');
      } catch (err) {
        this.db.exec('ROLLBACK');
        throw err;
      }
    } catch (err) {
      throw new IopError('STORE', `cannot open gateway store ${path}: ${errorMessage(err)}`, { path }, { cause: err });
    }
    const db = this.db;
    this.s = {
      row: db.prepare('SELECT seq, hash, prev, message, received_ms AS receivedMs FROM readings WHERE device = ? AND seq = ?'),
      insert: db.prepare('INSERT INTO readings (device, seq, hash, prev, message, received_ms) VALUES (?, ?, ?, ?, ?, ?)'),
      frontier: db.prepare('SELECT seq, hash FROM frontier WHERE device = ?'),
      setFrontier: db.prepare('INSERT INTO frontier (device, seq, hash) VALUES (?, ?, ?) ON CONFLICT(device) DO UPDATE SET seq = excluded.seq, hash = excluded.hash'),
      runs: db.prepare('SELECT first, last, hash FROM runs WHERE device = ?'),
      pendingDevices: db.prepare('SELECT DISTINCT r.device FROM runs r LEFT JOIN frontier f ON f.device = r.device WHERE f.seq IS NULL OR r.last > f.seq'),
      count: db.prepare('SELECT count(*) AS n FROM readings WHERE device = ?'),
      upsertRun: db.prepare('INSERT INTO runs (device, first, last, hash) VALUES (?, ?, ?, ?) ON CONFLICT(device, first) DO UPDATE SET last = excluded.last, hash = excluded.hash'),
      deleteRun: db.prepare('DELETE FROM runs WHERE device = ? AND first = ?'),
      lowestRun: db.prepare('SELECT first, last, hash FROM runs WHERE device = ? ORDER BY first LIMIT 1'),
      highestRuns: db.prepare('SELECT first, last, hash FROM runs WHERE device = ? ORDER BY first DESC LIMIT ?'),
    };
  }

  acceptAll(readings: IncomingReading[], nowMs = Date.now()): Promise<AcceptResult[]> {
    return this.transaction(async () => {
      const { results, ledgers } = await acceptBatch(readings, nowMs, this.gapTimeoutMs, async (device) => this.snapshot(device));
      for (const ledger of ledgers) this.write(ledger.changes());
      return results;
    });
  }

  async accept(reading: IncomingReading, nowMs = Date.now()): Promise<AcceptResult> {
    return (await this.acceptAll([reading], nowMs))[0]!;
  }

  async heldRanges(device: string): Promise<ReceiptRange[]> {
    return receiptRanges(this.s.lowestRun.get(device) as Run | undefined, this.s.highestRuns.all(device, MAX_RECEIPT_RANGES - 1) as unknown as Run[]);
  }

  async pendingDevices(): Promise<string[]> {
    return (this.s.pendingDevices.all() as { device: string }[]).map((row) => row.device);
  }

  settle(device: string, nowMs = Date.now()): Promise<StepResult> {
    return this.transaction(async () => {
      const ledger = new DeviceLedger(device, this.snapshot(device), this.gapTimeoutMs);
      const result = await ledger.advance(nowMs);
      this.write(ledger.changes());
      return result;
    });
  }

  async frontier(device: string): Promise<ChainLink | undefined> {
    return this.frontierOf(device);
  }

  async count(device: string): Promise<number> {
    return (this.s.count.get(device) as { n: number }).n;
  }

  pairings(stateDir: string): PairingStore {
    return new FilePairingStore(stateDir);
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    this.db.close();
  }

  private frontierOf(device: string): ChainLink | undefined {
    const row = this.s.frontier.get(device) as { seq: number; hash: Uint8Array } | undefined;
    return row ? { seq: row.seq, hash: row.hash } : undefined;
  }

  private snapshot(device: string): DeviceSnapshot {
    return {
      frontier: this.frontierOf(device),
      runs: this.s.runs.all(device) as unknown as Run[],
      row: async (seq) => this.s.row.get(device, seq) as HeldRow | undefined,
    };
  }

  private write(changes: DeviceChanges): void {
    const { device } = changes;
    for (const r of changes.inserted) this.s.insert.run(device, r.seq, r.hash, r.prev, r.message, r.receivedMs);
    for (const first of changes.deletedRuns) this.s.deleteRun.run(device, first);
    for (const run of changes.upsertedRuns) this.s.upsertRun.run(device, run.first, run.last, run.hash);
    if (changes.frontier) this.s.setFrontier.run(device, changes.frontier.seq, changes.frontier.hash);
  }

  private transaction<T>(body: () => Promise<T>): Promise<T> {
    const run = this.queue.catch(() => undefined).then(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await body();
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        try { this.db.exec('ROLLBACK'); } catch { /* already ended */ }
        throw err;
      }
    });
    this.queue = run;
    return run;
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
