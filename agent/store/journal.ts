// The journal: every signed message, in sequence order, in SQLite (WAL, synchronous
// FULL). A message is stored together with the new chain head in one transaction, so
// the sequence number and chain head advance only with the stored message, and a crash
// or power cut at any moment neither reuses nor skips a sequence number. It is also the
// uplink queue: messages leave it only when a receipt covers them (each one exactly, so
// the queue may have holes), or, past the configured bound, oldest first (counted as
// dropped).
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { join } from 'node:path';
import type { ChainLink } from '../codec/chain.ts';
import type { DeviceIdentity } from '../codec/identity.ts';
import type { DeviceKey } from '../identity/device-key.ts';
import { IopError, errorMessage } from '../errors.ts';
import { bytesEqual } from '../codec/hex.ts';
import { signNext, type SignedMessage } from '../signer.ts';
import type { ReadingQueue, StoredMessage } from './reading-queue.ts';

export const STORE_FILE = 'store.db';
const SCHEMA_VERSION = 1;
/** Signing again because another process moved the head: this many times at most. */
const MAX_SIGN_ATTEMPTS = 100;

export type { StoredMessage } from './reading-queue.ts';

export interface JournalStats {
  /** messages waiting for a receipt */
  stored: number;
  /** lowest stored seq, if any */
  oldest: number | undefined;
  /** seq of the last message signed, if any */
  head: number | undefined;
  /** every message up to here was acknowledged or dropped (-1 before the first receipt) */
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
    oldestStoredAt: StatementSync;
    firstFrom: StatementSync;
    deleteThrough: StatementSync;
    deleteRange: StatementSync;
    dropOldest: StatementSync;
    meta: StatementSync;
    setMeta: StatementSync;
  };
  /**
   * The writer queue: appends run one after another, because each waits for its
   * signature. Every write transaction (append, removal) is synchronous, so none spans an
   * await and the event loop orders them; a removal may run while an append waits for its
   * signature, and does not touch the chain head the append builds on.
   */
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
      oldestStoredAt: db.prepare('SELECT created_ms AS ms FROM messages ORDER BY seq LIMIT 1'),
      firstFrom: db.prepare('SELECT min(seq) AS seq FROM messages WHERE seq >= ?'),
      deleteThrough: db.prepare('DELETE FROM messages WHERE seq <= ?'),
      deleteRange: db.prepare('DELETE FROM messages WHERE seq BETWEEN ? AND ?'),
      dropOldest: db.prepare('DELETE FROM messages WHERE seq IN (SELECT seq FROM messages ORDER BY seq LIMIT ?)'),
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

  /**
   * Sign, then store, with no transaction open across the signature (a secure element may
   * take tens of milliseconds). Crash safety: the signature is made from the head read
   * before it, but nothing is written and nothing leaves this function until the message
   * and the new head are committed in one transaction, which first checks that the head is
   * still the one signed against. A crash before the commit leaves the head where it was
   * and the signed message nowhere (its seq is signed again next time, and no copy of the
   * first exists); a crash after it leaves both. Another process that moved the head in
   * between (several on one state dir) makes the check fail: sign again on the new head.
   */
  private async appendNow(payload: Uint8Array, nowMs: number): Promise<StoredMessage> {
    for (let attempt = 1; ; attempt++) {
      const head = this.head();
      let signed: SignedMessage;
      try {
        signed = await signNext(this.key, this.identity, head, payload);
      } catch (err) {
        if (err instanceof IopError) throw err;
        throw storeError('cannot store message', err);
      }
      if (this.store(head, signed, nowMs)) return { seq: signed.seq, bytes: signed.bytes };
      if (attempt >= MAX_SIGN_ATTEMPTS) throw new IopError('STORE', `cannot store message: the chain head moved ${attempt} times while signing (other processes signing on this state dir)`);
    }
  }

  /** Stores a message signed against `signedOn`, if that is still the head. */
  private store(signedOn: ChainLink | undefined, signed: SignedMessage, nowMs: number): boolean {
    // IMMEDIATE takes the write lock first, so another process cannot move the head
    // between the check and the insert.
    return this.write('cannot store message', () => {
      const head = this.head();
      if (head?.seq !== signedOn?.seq || (head && !bytesEqual(head.hash, signedOn!.hash))) return false;
      this.statements.insert.run(signed.seq, signed.bytes, nowMs);
      this.statements.setHead.run(this.identity.id, signed.seq, signed.hash);
      this.dropBeyondBound(signed.seq);
      return true;
    });
  }

  private dropBeyondBound(head: number): void {
    // The span from oldest to head bounds the count: no need to read the holes below it.
    const oldest = this.oldest();
    if (oldest === undefined || head - oldest + 1 <= this.maxMessages) return;
    const stored = this.count();
    if (stored <= this.maxMessages) return;
    const dropped = Number(this.statements.dropOldest.run(stored - this.maxMessages).changes);
    this.recount(stored - dropped);
    this.setMeta('dropped', this.meta('dropped', 0) + dropped);
  }

  /** Removes every message up to and including `seq`: the broker acknowledged them. */
  removeThrough(seq: number): void {
    if (seq <= this.acked()) return;
    this.write('cannot remove acknowledged messages', () => {
      const stored = this.count();
      this.forget(stored, Number(this.statements.deleteThrough.run(seq).changes));
      this.setMeta('acked', Math.max(seq, this.acked()));
    });
  }

  /**
   * Removes exactly the messages in these ranges (a receipt covered them, checked by the
   * caller) and returns how many were stored.
   */
  removeRanges(ranges: readonly { first: number; last: number }[]): number {
    return this.write('cannot remove acknowledged messages', () => {
      const stored = this.count();
      let removed = 0;
      for (const r of ranges) removed += Number(this.statements.deleteRange.run(r.first, r.last).changes);
      this.forget(stored, removed);
      return removed;
    });
  }

  /** After a removal: the count, and `acked` rises to just below the oldest message still held. */
  private forget(storedBefore: number, removed: number): void {
    if (removed === 0) return;
    this.recount(storedBefore - removed);
    const below = this.oldest() ?? (this.head()?.seq ?? -1) + 1;
    if (below - 1 > this.acked()) this.setMeta('acked', below - 1);
  }

  /**
   * The count is the span from oldest to head less the holes receipts left in it. Appends
   * add no hole, so only removals write it: an append's transaction stays two rows.
   */
  private recount(stored: number): void {
    const oldest = this.oldest();
    const head = this.head();
    const span = oldest === undefined || head === undefined ? 0 : head.seq - oldest + 1;
    this.setMeta('holes', span - stored);
  }

  private write<T>(what: string, body: () => T): T {
    try {
      this.db.exec('BEGIN IMMEDIATE');
      const result = body();
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      try { this.db.exec('ROLLBACK'); } catch { /* the failed statement may have ended the transaction */ }
      if (err instanceof IopError) throw err;
      throw storeError(what, err);
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

  /** The lowest stored seq from `seq` on, if any (the queue may have holes). */
  firstFrom(seq: number): number | undefined {
    return (this.statements.firstFrom.get(seq) as { seq: number | null }).seq ?? undefined;
  }

  oldest(): number | undefined {
    return (this.statements.oldest.get() as { seq: number | null }).seq ?? undefined;
  }

  /** When the oldest message still waiting was stored (ms since the epoch), if any. */
  oldestStoredAtMs(): number | undefined {
    return (this.statements.oldestStoredAt.get() as { ms: number } | undefined)?.ms;
  }

  acked(): number {
    return this.meta('acked', -1);
  }

  /** Counted without a scan (slow on a large queue): the span from oldest to head, less the holes. */
  count(): number {
    const oldest = this.oldest();
    const head = this.head();
    return oldest === undefined || head === undefined ? 0 : head.seq - oldest + 1 - this.meta('holes', 0);
  }

  /** The message stored at `seq`, if any. */
  get(seq: number): StoredMessage | undefined {
    const [message] = this.batch(seq, 1);
    return message?.seq === seq ? message : undefined;
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
