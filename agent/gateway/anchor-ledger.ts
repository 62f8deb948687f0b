// The anchoring ledger: which stored readings went into which epoch's Merkle tree, each
// epoch's root and how far its transaction got, and the pairings waiting to be relayed.
// It lives in the gateway's database (its own tables beside the readings), so an epoch's
// leaves survive a restart and a process that restarts between sending a transaction and
// seeing it mined knows the transaction's nonce and hash.
//
// An epoch is built once, at its end (plus a grace for batches still committing): every
// reading stored before the end that no earlier epoch took becomes one of its leaves, in
// the same transaction that records the root. A reading is thus in exactly one epoch
// (normally the one its receive time falls in; one committed after its epoch was built
// goes into the next). Epochs without readings get no root and no transaction.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IopError, errorMessage } from '../errors.ts';
import { buildTree, type AnchorLeaf } from '../chain/merkle.ts';
import { GATEWAY_STORE_FILE } from './store.ts';

/**
 * built: root known, nothing sent; sending: nonce chosen, the transaction may or may not
 * have reached the node; sent: hash known, not yet in a block; mined: in a block, still
 * watched for reorgs; final: enough confirmations.
 */
export type EpochState = 'built' | 'sending' | 'sent' | 'mined' | 'final';

export interface EpochRecord {
  epoch: number;
  root: string;
  leaves: number;
  state: EpochState;
  nonce: number | null;
  tx: string | null;
  sends: number;
  block: number | null;
  chainId: number | null;
  contract: string | null;
}

export interface PairingRelay {
  device: string;
  nonce: string;
  claim: { owner: string; previousOwner: string; expires: number; signature: string };
  state: 'pending' | 'sent' | 'done' | 'failed';
  tx: string | null;
}

/** A ledger's answer: at once (SQLite, node:sqlite is synchronous) or later (PostgreSQL). */
export type Awaitable<T> = T | Promise<T>;

/**
 * What the anchorer needs of a ledger: SqliteAnchorLedger (this file, beside the SQLite
 * store) and PostgresAnchorLedger (anchor-ledger-postgres.ts, beside the PostgreSQL one).
 */
export interface AnchorLedger {
  readonly epochS: number;
  /** Builds every epoch that ended before nowMs - graceMs; returns those that got a root. */
  buildDue(nowMs: number, graceMs: number): Awaitable<EpochRecord[]>;
  /** Epochs not final, oldest first. */
  unfinished(): Awaitable<EpochRecord[]>;
  epoch(epoch: number): Awaitable<EpochRecord | undefined>;
  update(epoch: number, change: EpochChange): Awaitable<void>;
  /** The epoch a reading was anchored in, if any. */
  epochOf(device: string, seq: number): Awaitable<number | undefined>;
  leavesOf(epoch: number): Awaitable<AnchorLeaf[]>;
  leafOf(device: string, seq: number): Awaitable<AnchorLeaf | undefined>;
  /** One anchoring process per database: true while `owner` holds the lease. */
  claimLease(owner: string, nowMs: number, ttlMs: number): Awaitable<boolean>;
  /**
   * The chain and contract this gateway anchors on; refuses another once set. `account`:
   * the address it sends from (a ledger shared by several processes refuses a second one).
   */
  bindChain(chainId: number, contract: string, account?: string): Awaitable<void>;
  queuePairing(relay: Omit<PairingRelay, 'state' | 'tx'>): Awaitable<void>;
  pairings(state: PairingRelay['state']): Awaitable<PairingRelay[]>;
  updatePairing(device: string, nonce: string, state: PairingRelay['state'], tx: string | null, error?: string): Awaitable<void>;
  close(): Awaitable<void>;
}

export type EpochChange = Partial<Pick<EpochRecord, 'state' | 'nonce' | 'tx' | 'sends' | 'block' | 'chainId' | 'contract'>>;

/** What a proof is read from: either ledger (proof, verify --anchored). */
export type LedgerReader = Pick<AnchorLedger, 'epochOf' | 'epoch' | 'leavesOf' | 'leafOf' | 'close'>;

type Statement = 'meta' | 'setMeta' | 'insertEpoch' | 'epoch' | 'unfinished' | 'insertLeaf' | 'epochOf' | 'leavesOf'
  | 'queuePairing' | 'pairings' | 'updatePairing';

export class SqliteAnchorLedger implements AnchorLedger {
  readonly epochS: number;
  protected readonly db: DatabaseSync;
  protected readonly s: Record<Statement, StatementSync>;
  /** the gateway store's readings not yet in an epoch; prepared once that table exists */
  private candidates: StatementSync | undefined;

  /**
   * `epochS` undefined: whatever the ledger was made with (the proof command). `file`: the
   * database, relative to the state dir (default the gateway's store).
   */
  constructor(stateDir: string, options: { epochS?: number | undefined; file?: string }) {
    const path = join(stateDir, options.file ?? GATEWAY_STORE_FILE);
    // Reading proofs from a state dir that is not a gateway's must not leave a database there.
    if (options.epochS === undefined && !existsSync(path)) throw new IopError('STORE', `${stateDir} is not a gateway state dir (no ${GATEWAY_STORE_FILE})`, { path });
    try {
      this.db = new DatabaseSync(path, { timeout: 10_000 });
      this.db.exec('PRAGMA journal_mode = WAL');
      this.db.exec('PRAGMA synchronous = FULL');
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS anchor_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
        CREATE TABLE IF NOT EXISTS anchor_epochs (epoch INTEGER PRIMARY KEY, root TEXT NOT NULL, leaves INTEGER NOT NULL,
          state TEXT NOT NULL, nonce INTEGER, tx TEXT, sends INTEGER NOT NULL DEFAULT 0, block INTEGER, chain_id INTEGER, contract TEXT) STRICT;
        CREATE TABLE IF NOT EXISTS anchor_leaves (device TEXT NOT NULL, seq INTEGER NOT NULL, epoch INTEGER NOT NULL, hash BLOB NOT NULL,
          PRIMARY KEY (device, seq)) STRICT;
        CREATE INDEX IF NOT EXISTS anchor_leaves_by_epoch ON anchor_leaves (epoch);
        CREATE TABLE IF NOT EXISTS chain_pairings (device TEXT NOT NULL, nonce TEXT NOT NULL, claim TEXT NOT NULL, state TEXT NOT NULL,
          tx TEXT, error TEXT, PRIMARY KEY (device, nonce)) STRICT;
      `);
    } catch (err) {
      throw new IopError('STORE', `cannot open the anchoring ledger in ${path}: ${errorMessage(err)}`, { path }, { cause: err });
    }
    const db = this.db;
    this.s = {
      meta: db.prepare('SELECT value FROM anchor_meta WHERE key = ?'),
      setMeta: db.prepare('INSERT INTO anchor_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      insertEpoch: db.prepare("INSERT INTO anchor_epochs (epoch, root, leaves, state) VALUES (?, ?, ?, 'built')"),
      epoch: db.prepare('SELECT * FROM anchor_epochs WHERE epoch = ?'),
      unfinished: db.prepare("SELECT * FROM anchor_epochs WHERE state != 'final' ORDER BY epoch"),
      insertLeaf: db.prepare('INSERT INTO anchor_leaves (device, seq, epoch, hash) VALUES (?, ?, ?, ?)'),
      epochOf: db.prepare('SELECT epoch, hash FROM anchor_leaves WHERE device = ? AND seq = ?'),
      leavesOf: db.prepare('SELECT device, seq, hash FROM anchor_leaves WHERE epoch = ?'),
      queuePairing: db.prepare("INSERT INTO chain_pairings (device, nonce, claim, state) VALUES (?, ?, ?, 'pending') ON CONFLICT DO NOTHING"),
      pairings: db.prepare('SELECT device, nonce, claim, state, tx FROM chain_pairings WHERE state = ? ORDER BY rowid'),
      updatePairing: db.prepare('UPDATE chain_pairings SET state = ?, tx = ?, error = ? WHERE device = ? AND nonce = ?'),
    };
    const stored = this.meta('epoch_s');
    if (options.epochS === undefined) {
      if (stored === undefined) throw new IopError('STORE', `${path} has no anchoring ledger: this gateway never anchored`, { path });
      this.epochS = Number(stored);
    } else {
      // Epoch numbers are unix time / epoch length: another length would renumber them.
      if (stored !== undefined && Number(stored) !== options.epochS) {
        throw new IopError('CONFIG', `this gateway anchored with epochs of ${stored} s; --epoch-s ${options.epochS} would renumber them (use a new contract and state dir to change it)`);
      }
      this.epochS = options.epochS;
      if (stored === undefined) this.setMeta('epoch_s', String(options.epochS));
    }
  }

  buildDue(nowMs: number, graceMs: number): EpochRecord[] {
    const epochMs = this.epochS * 1000;
    const built: EpochRecord[] = [];
    for (;;) {
      const record = this.transaction(() => {
        // Anchoring starts with the epoch current when it was first turned on.
        const stored = this.meta('next_epoch');
        const next = stored === undefined ? Math.floor(nowMs / epochMs) : Number(stored);
        if (stored === undefined) {
          this.setMeta('next_epoch', String(next));
          this.setMeta('first_epoch', String(next));
        }
        const first = Number(this.meta('first_epoch') ?? next);
        if ((next + 1) * epochMs + graceMs > nowMs) return null;
        // A reading committed late (its batch straddled the end) is still found one epoch on.
        const rows = this.readingsBetween(Math.max(next - 1, first) * epochMs, (next + 1) * epochMs);
        this.setMeta('next_epoch', String(next + 1));
        if (rows.length === 0) return undefined;
        for (const row of rows) this.s.insertLeaf.run(row.device, row.seq, next, row.hash);
        this.s.insertEpoch.run(next, buildTree(rows).root, rows.length);
        return this.epoch(next)!;
      });
      if (record === null) return built;
      if (record) built.push(record);
    }
  }

  private readingsBetween(fromMs: number, toMs: number): { device: string; seq: number; hash: Uint8Array }[] {
    if (!this.candidates) {
      // The gateway opens its store (which makes the table) before the ledger; this is for
      // a ledger opened first all the same: no readings yet.
      if (!readingsExist(this.db)) return [];
      this.db.exec('CREATE INDEX IF NOT EXISTS anchor_readings_by_received ON readings (received_ms)');
      this.candidates = this.db.prepare(`SELECT r.device, r.seq, r.hash FROM readings r WHERE r.received_ms >= ? AND r.received_ms < ?
        AND NOT EXISTS (SELECT 1 FROM anchor_leaves a WHERE a.device = r.device AND a.seq = r.seq)`);
    }
    return this.candidates.all(fromMs, toMs) as { device: string; seq: number; hash: Uint8Array }[];
  }

  unfinished(): EpochRecord[] {
    return (this.s.unfinished.all() as Row[]).map(fromRow);
  }

  epoch(epoch: number): EpochRecord | undefined {
    const row = this.s.epoch.get(epoch) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  update(epoch: number, change: EpochChange): void {
    const columns: Record<string, string> = { state: 'state', nonce: 'nonce', tx: 'tx', sends: 'sends', block: 'block', chainId: 'chain_id', contract: 'contract' };
    const keys = Object.keys(change).filter((k) => k in columns);
    if (!keys.length) return;
    const sql = `UPDATE anchor_epochs SET ${keys.map((k) => `${columns[k]} = ?`).join(', ')} WHERE epoch = ?`;
    this.db.prepare(sql).run(...keys.map((k) => change[k as keyof typeof change] ?? null), epoch);
  }

  epochOf(device: string, seq: number): number | undefined {
    return (this.s.epochOf.get(device, seq) as { epoch: number } | undefined)?.epoch;
  }

  leafOf(device: string, seq: number): AnchorLeaf | undefined {
    const row = this.s.epochOf.get(device, seq) as { hash: Uint8Array } | undefined;
    return row ? { device, seq, hash: row.hash } : undefined;
  }

  leavesOf(epoch: number): AnchorLeaf[] {
    return (this.s.leavesOf.all(epoch) as { device: string; seq: number; hash: Uint8Array }[]).map((r) => ({ device: r.device, seq: r.seq, hash: r.hash }));
  }

  claimLease(owner: string, nowMs: number, ttlMs: number): boolean {
    return this.transaction(() => {
      const lease = this.meta('lease');
      const current = lease ? JSON.parse(lease) as { owner: string; untilMs: number } : undefined;
      if (current && current.owner !== owner && current.untilMs > nowMs) return false;
      this.setMeta('lease', JSON.stringify({ owner, untilMs: nowMs + ttlMs }));
      return true;
    });
  }

  bindChain(chainId: number, contract: string): void {
    this.transaction(() => {
      const bound = this.meta('chain');
      const wanted = `${chainId}:${contract.toLowerCase()}`;
      if (bound && bound !== wanted) {
        const [id, address] = bound.split(':');
        throw new IopError('CONFIG', `this gateway anchors on chain ${id}, contract ${address}; it will not anchor the same epochs on chain ${chainId}, contract ${contract} (use a new state dir)`);
      }
      if (!bound) this.setMeta('chain', wanted);
    });
  }

  queuePairing(relay: Omit<PairingRelay, 'state' | 'tx'>): void {
    this.s.queuePairing.run(relay.device, relay.nonce, JSON.stringify(relay.claim));
  }

  pairings(state: PairingRelay['state']): PairingRelay[] {
    return (this.s.pairings.all(state) as { device: string; nonce: string; claim: string; state: PairingRelay['state']; tx: string | null }[])
      .map((r) => ({ ...r, claim: JSON.parse(r.claim) as PairingRelay['claim'] }));
  }

  updatePairing(device: string, nonce: string, state: PairingRelay['state'], tx: string | null, error?: string): void {
    this.s.updatePairing.run(state, tx, error ?? null, device, nonce);
  }

  close(): void {
    this.db.close();
  }

  protected meta(key: string): string | undefined {
    return (this.s.meta.get(key) as { value: string } | undefined)?.value;
  }

  protected setMeta(key: string, value: string): void {
    this.s.setMeta.run(key, value);
  }

  protected transaction<T>(body: () => T): T {
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

type Row = { epoch: number; root: string; leaves: number; state: EpochState; nonce: number | null; tx: string | null; sends: number; block: number | null; chain_id: number | null; contract: string | null };

function fromRow(row: Row): EpochRecord {
  return { epoch: row.epoch, root: row.root, leaves: row.leaves, state: row.state, nonce: row.nonce, tx: row.tx, sends: row.sends, block: row.block, chainId: row.chain_id, contract: row.contract };
}

function readingsExist(db: DatabaseSync): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'readings'").get() !== undefined;
}
