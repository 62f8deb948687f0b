// The journal: every signed message, in sequence order, in SQLite (WAL, synchronous
// FULL). Signing and storing are one transaction: the sequence number and chain head
// advance only together with the stored message, so a crash or power cut at any
// moment neither reuses nor skips a sequence number. It is also the uplink queue:
// messages leave it only when a receipt covers them, or, past the configured bound,
// oldest first (counted as dropped).
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { join } from 'node:path';
import type { ChainLink } from '../codec/chain.ts';
import type { DeviceIdentity } from '../codec/identity.ts';
import type { DeviceKey } from '../identity/device-key.ts';
import { IopError, errorMessage } from '../errors.ts';
import { signNext } from '../signer.ts';
import type { ReadingQueue, StoredMessage } from './reading-queue.ts';

export const STORE_FILE = 'store.db';
const SCHEMA_VERSION = 1;

export type { StoredMessage } from './reading-queue.ts';

export interface JournalStats {
  /** messages waiting for a receipt */
  stored: number;
  /** lowest stored seq, if any */
  oldest: number | undefined;
  /** seq of the last message signed, if any */
  head: number | undefined;
  /** highest seq a receipt covered (-1 before the first) */
  acked: number;
  /** messages removed unacknowledged because the queue was full */
  dropped: number;
}

export interface JournalOptions {
  /** Bound of the queue; past it the oldest messages are dropped. */
  maxMessages?: number;
}

export class Journal implements ReadingQueue {
  private readonly db: DatabaseSync;
  private readonly statements: {
    head: StatementSync;
    setHead: StatementSync;
    insert: StatementSync;
    range: StatementSync;
    oldest: StatementSync;
    deleteThrough: StatementSync;
    meta: StatementSync;
    setMeta: StatementSync;
  };
  /** Appends run one after another; each holds the write transaction while it signs. */
  private tail: Promise<unknown> = Promise.resolve();
  private readonly identity: DeviceIdentity;
  private readonly key: DeviceKey;
  private readonly maxMessages: number;

  private constructor(db: DatabaseSync, identity: DeviceIdentity, key: DeviceKey, options: JournalOptions) {
    this.db = db;
    this.identity = identity;
    this.key = key;
    this.maxMessages = options.maxMessages ?? Number.MAX_SAFE_INTEGER;
    this.statements = {
      head: db.prepare('SELECT device, seq, hash FROM chain_head'),
      setHead: db.prepare('INSERT INTO chain_head (device, seq, hash) VALUES (?, ?, ?) ON CONFLICT(device) DO UPDATE SET seq = excluded.seq, hash = excluded.hash'),
      insert: db.prepare('INSERT INTO messages (seq, message, created_ms) VALUES (?, ?, ?)'),
      range: db.prepare('SELECT seq, message FROM messages WHERE seq >= ? ORDER BY seq LIMIT ?'),
      oldest: db.prepare('SELECT min(seq) AS seq FROM messages'),
      deleteThrough: db.prepare('DELETE FROM messages WHERE seq <= ?'),
      meta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    };
    this.checkIdentity();
  }

  static open(stateDir: string, identity: DeviceIdentity, key: DeviceKey, options: JournalOptions = {}): Journal {
    const path = join(stateDir, STORE_FILE);
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout: 10_000 });
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      // Small boxes have small partitions: keep the WAL near 1 MiB, not SQLite's 4 MiB default.
      db.exec('PRAGMA wal_autocheckpoint = 256');
      db.exec('PRAGMA journal_size_limit = 1048576');
      // Appends at the tail and reads in order: 512 KiB of page cache is plenty, and
      // SQLite's default 2 MiB is a tenth of what the whole agent may take on a box.
      db.exec('PRAGMA cache_size = -512');
      migrate(db, path);
    } catch (err) {
      if (err instanceof IopError) throw err;
      throw storeError(`cannot open store ${path}`, err, { path });
    }
    return new Journal(db, identity, key, options);
  }

  /** The last message's sequence number and hash, or undefined before the first. */
  head(): ChainLink | undefined {
    const row = this.statements.head.get() as { seq: number; hash: Uint8Array } | undefined;
    return row ? { seq: row.seq, hash: row.hash } : undefined;
  }

  /** Signs `payload` as the next message of the chain and stores it, atomically. */
  append(payload: Uint8Array, nowMs = Date.now()): Promise<StoredMessage> {
    const run = this.tail.then(() => this.appendNow(payload, nowMs));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async appendNow(payload: Uint8Array, nowMs: number): Promise<StoredMessage> {
    // IMMEDIATE takes the write lock first, so another process on the same state dir
    // waits instead of reading the same head and signing the same seq.
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const { seq, bytes, hash } = await signNext(this.key, this.identity, this.head(), payload);
      this.statements.insert.run(seq, bytes, nowMs);
      this.statements.setHead.run(this.identity.id, seq, hash);
      this.dropBeyondBound(seq);
      this.db.exec('COMMIT');
      return { seq, bytes };
    } catch (err) {
      try { this.db.exec('ROLLBACK'); } catch { /* the failed statement may have ended the transaction */ }
      if (err instanceof IopError) throw err;
      throw storeError('cannot store message', err);
    }
  }

  private dropBeyondBound(head: number): void {
    const oldest = this.oldest();
    if (oldest === undefined || head - oldest + 1 <= this.maxMessages) return;
    const through = head - this.maxMessages;
    this.statements.deleteThrough.run(through);
    this.setMeta('dropped', this.meta('dropped', 0) + (through - oldest + 1));
  }

  /** Removes every message up to and including `seq`: a receipt covered them. */
  removeThrough(seq: number): void {
    if (seq <= this.acked()) return;
    try {
      this.db.exec('BEGIN IMMEDIATE');
      this.statements.deleteThrough.run(seq);
      this.setMeta('acked', seq);
      this.db.exec('COMMIT');
    } catch (err) {
      try { this.db.exec('ROLLBACK'); } catch { /* already ended */ }
      throw storeError('cannot remove acknowledged messages', err);
    }
  }

  *messages(fromSeq = 0, batch = 500): Generator<StoredMessage> {
    let next = fromSeq;
    for (;;) {
      const rows = this.statements.range.all(next, batch) as { seq: number; message: Uint8Array }[];
      for (const row of rows) yield { seq: row.seq, bytes: row.message };
      if (rows.length < batch) return;
      next = rows[rows.length - 1]!.seq + 1;
    }
  }

  /** Up to `limit` messages from `fromSeq` on, in order. */
  batch(fromSeq: number, limit: number): StoredMessage[] {
    return (this.statements.range.all(fromSeq, limit) as { seq: number; message: Uint8Array }[]).map((row) => ({ seq: row.seq, bytes: row.message }));
  }

  oldest(): number | undefined {
    return (this.statements.oldest.get() as { seq: number | null }).seq ?? undefined;
  }

  acked(): number {
    return this.meta('acked', -1);
  }

  /** Stored messages form one run from oldest to head, so counting needs no scan. */
  count(): number {
    const oldest = this.oldest();
    const head = this.head();
    return oldest === undefined || head === undefined ? 0 : head.seq - oldest + 1;
  }

  stats(): JournalStats {
    return { stored: this.count(), oldest: this.oldest(), head: this.head()?.seq, acked: this.acked(), dropped: this.meta('dropped', 0) };
  }

  close(): void {
    this.db.close();
  }

  private meta(key: string, fallback: number): number {
    const row = this.statements.meta.get(key) as { value: number } | undefined;
    return row ? row.value : fallback;
  }

  private setMeta(key: string, value: number): void {
    this.statements.setMeta.run(key, value);
  }

  private checkIdentity(): void {
    const row = this.statements.head.get() as { device: string } | undefined;
    if (row && row.device !== this.identity.id) {
      throw new IopError('KEY_MISMATCH',
        `the store holds the chain of device ${row.device} but the device key is ${this.identity.id}: ` +
        `the key was replaced; restore the original key`, { stored: row.device, key: this.identity.id });
    }
  }
}

/** SQLite's codes for a full disk or an I/O failure get words a field tech can act on. */
function storeError(what: string, err: unknown, context: Record<string, unknown> = {}): IopError {
  const message = errorMessage(err);
  const code = (err as { errcode?: number }).errcode;
  const reason = code === 13 || /database or disk is full/i.test(message) ? 'the disk is full'
    : code === 8 || /readonly/i.test(message) ? 'the store is read-only'
    : message;
  return new IopError('STORE', `${what}: ${reason}`, { ...context, sqlite: code }, { cause: err });
}

function migrate(db: DatabaseSync, path: string): void {
  const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  if (version > SCHEMA_VERSION) {
    throw new IopError('STORE', `store ${path} has schema ${version}, newer than this agent understands (${SCHEMA_VERSION})`, { path });
  }
  if (version === SCHEMA_VERSION) return;
  db.exec(`
    BEGIN IMMEDIATE;
    CREATE TABLE IF NOT EXISTS chain_head (device TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash BLOB NOT NULL) STRICT;
    CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, message BLOB NOT NULL, created_ms INTEGER NOT NULL) STRICT;
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
    PRAGMA user_version = ${SCHEMA_VERSION};
    COMMIT;
  `);
}
