// The journal: every signed message, in sequence order, in SQLite (WAL, synchronous
// FULL). Signing and storing are one transaction: the sequence number and chain head
// advance only together with the stored message, so a crash or power cut at any
// moment neither reuses nor skips a sequence number.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { join } from 'node:path';
import type { ChainLink } from '../codec/chain.ts';
import type { DeviceIdentity } from '../codec/identity.ts';
import type { DeviceKey } from '../identity/device-key.ts';
import { IopError, errorMessage } from '../errors.ts';
import { signNext } from '../signer.ts';

export const STORE_FILE = 'store.db';
const SCHEMA_VERSION = 1;

export interface StoredMessage {
  seq: number;
  bytes: Uint8Array;
}

export class Journal {
  private readonly db: DatabaseSync;
  private readonly statements: {
    head: StatementSync;
    setHead: StatementSync;
    insert: StatementSync;
    range: StatementSync;
    count: StatementSync;
  };
  /** Appends run one after another; each holds the write transaction while it signs. */
  private tail: Promise<unknown> = Promise.resolve();

  private readonly identity: DeviceIdentity;
  private readonly key: DeviceKey;

  private constructor(db: DatabaseSync, identity: DeviceIdentity, key: DeviceKey) {
    this.db = db;
    this.identity = identity;
    this.key = key;
    this.statements = {
      head: db.prepare('SELECT device, seq, hash FROM chain_head'),
      setHead: db.prepare('INSERT INTO chain_head (device, seq, hash) VALUES (?, ?, ?) ON CONFLICT(device) DO UPDATE SET seq = excluded.seq, hash = excluded.hash'),
      insert: db.prepare('INSERT INTO messages (seq, message, created_ms) VALUES (?, ?, ?)'),
      range: db.prepare('SELECT seq, message FROM messages WHERE seq >= ? ORDER BY seq LIMIT ?'),
      count: db.prepare('SELECT count(*) AS n FROM messages'),
    };
    this.checkIdentity();
  }

  static open(stateDir: string, identity: DeviceIdentity, key: DeviceKey): Journal {
    const path = join(stateDir, STORE_FILE);
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout: 10_000 });
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      migrate(db, path);
    } catch (err) {
      if (err instanceof IopError) throw err;
      throw new IopError('STORE', `cannot open store ${path}: ${errorMessage(err)}`, { path }, { cause: err });
    }
    return new Journal(db, identity, key);
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
    this.exec('BEGIN IMMEDIATE');
    try {
      const { seq, bytes, hash } = await signNext(this.key, this.identity, this.head(), payload);
      this.statements.insert.run(seq, bytes, nowMs);
      this.statements.setHead.run(this.identity.id, seq, hash);
      this.exec('COMMIT');
      return { seq, bytes };
    } catch (err) {
      try { this.db.exec('ROLLBACK'); } catch { /* the failed statement may have ended the transaction */ }
      if (err instanceof IopError) throw err;
      throw new IopError('STORE', `cannot store message: ${errorMessage(err)}`, {}, { cause: err });
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

  count(): number {
    return (this.statements.count.get() as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }

  private exec(sql: string): void {
    this.db.exec(sql);
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
    PRAGMA user_version = ${SCHEMA_VERSION};
    COMMIT;
  `);
}
