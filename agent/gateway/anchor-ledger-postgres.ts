// The anchoring ledger in PostgreSQL, beside the readings of a gateway store shared by
// several gateway processes (store-postgres.ts; tables made by its migration 3). The rules
// are the SQLite ledger's (anchor-ledger.ts): an epoch is built once, at its end plus a
// grace, from the stored readings no earlier epoch took, in the same transaction that
// records its root; every step of its transaction is recorded before the next.
//
// Several processes, one anchoring at a time:
// - building: the transaction that builds an epoch first locks the `next_epoch` row
//   (SELECT … FOR UPDATE), so two gateways building at once queue there, and the second
//   finds the epoch built (and anchor_leaves' key refuses a reading in two epochs anyway);
// - sending: a lease row in anchor_meta, taken and renewed under its row lock, with the
//   expiry on the database's clock (gateways' clocks may differ). The holder sends; the
//   others only build. A holder killed -9 stops renewing: once the lease runs out the next
//   gateway takes it and finds each epoch's state, nonce and transaction hash here, and
//   checks them against the chain before sending anything (chain/anchorer.ts). A timed
//   lease rather than a session advisory lock, which would be released at once on a kill
//   but held for ever by a process that hangs with its connection open.
// The gateways share one chain key (bindChain refuses a second address): the nonce a
// dead holder recorded is then the one its successor checks.
import pg from 'pg';
import { IopError, errorMessage } from '../errors.ts';
import { buildTree, type AnchorLeaf } from '../chain/merkle.ts';
import type { AnchorLedger, EpochChange, EpochRecord, EpochState, PairingRelay } from './anchor-ledger.ts';
import { inTransaction, migrate, types } from './store-postgres.ts';
import { redact } from './store.ts';

const bytes = (value: Buffer): Uint8Array => new Uint8Array(value.buffer, value.byteOffset, value.byteLength);

export async function openPostgresAnchorLedger(url: string, options: { epochS: number }): Promise<PostgresAnchorLedger> {
  const pool = new pg.Pool({ connectionString: url, types, max: 2, application_name: 'iop-anchor' });
  pool.on('error', () => undefined);
  const ledger = new PostgresAnchorLedger(pool, options.epochS);
  try {
    await migrate(pool);
    await ledger.checkEpochLength();
  } catch (err) {
    await pool.end().catch(() => undefined);
    if (err instanceof IopError) throw err;
    throw new IopError('STORE', `cannot open the anchoring ledger in ${redact(url)}: ${errorMessage(err)}`, { db: redact(url) }, { cause: err });
  }
  return ledger;
}

/**
 * The ledger of a gateway database, opened to read proofs (proof, verify --anchored): it
 * migrates nothing and writes nothing, and refuses a database where no gateway anchored.
 */
export async function openPostgresLedgerReader(url: string): Promise<PostgresAnchorLedger> {
  const pool = new pg.Pool({ connectionString: url, types, max: 2, application_name: 'iop-proof' });
  pool.on('error', () => undefined);
  let epochS: number | undefined;
  try {
    const anchored = await pool.query<{ t: string | null }>("SELECT to_regclass('anchor_meta')::text AS t");
    if (anchored.rows[0]!.t !== null) {
      const stored = (await pool.query<{ value: string }>("SELECT value FROM anchor_meta WHERE key = 'epoch_s'")).rows[0]?.value;
      epochS = stored === undefined ? undefined : Number(stored);
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new IopError('STORE', `cannot read the anchoring ledger in ${redact(url)}: ${errorMessage(err)}`, { db: redact(url) }, { cause: err });
  }
  if (epochS === undefined) {
    await pool.end().catch(() => undefined);
    throw new IopError('STORE', `${redact(url)} has no anchoring ledger: no gateway on this database anchored`, { db: redact(url) });
  }
  return new PostgresAnchorLedger(pool, epochS);
}

type Row = {
  epoch: number; root: string; leaves: number; state: EpochState; nonce: number | null; tx: string | null; sends: number;
  block: number | null; chain_id: number | null; contract: string | null;
};
const fromRow = (r: Row): EpochRecord => ({
  epoch: r.epoch, root: r.root, leaves: r.leaves, state: r.state, nonce: r.nonce, tx: r.tx, sends: r.sends, block: r.block, chainId: r.chain_id, contract: r.contract,
});
const COLUMNS: Record<keyof EpochChange, string> = { state: 'state', nonce: 'nonce', tx: 'tx', sends: 'sends', block: 'block', chainId: 'chain_id', contract: 'contract' };

export class PostgresAnchorLedger implements AnchorLedger {
  readonly epochS: number;
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool, epochS: number) {
    this.pool = pool;
    this.epochS = epochS;
  }

  /** Epoch numbers are unix time / epoch length: another length would renumber them. */
  async checkEpochLength(): Promise<void> {
    await this.pool.query("INSERT INTO anchor_meta (key, value) VALUES ('epoch_s', $1) ON CONFLICT DO NOTHING", [String(this.epochS)]);
    const stored = await this.meta(this.pool, 'epoch_s');
    if (Number(stored) !== this.epochS) {
      throw new IopError('CONFIG', `the gateways on this database anchor with epochs of ${stored} s; --epoch-s ${this.epochS} would renumber them (use a new contract and database to change it)`);
    }
  }

  async buildDue(nowMs: number, graceMs: number): Promise<EpochRecord[]> {
    const epochMs = this.epochS * 1000;
    const built: EpochRecord[] = [];
    for (;;) {
      const record = await this.transaction(async (c) => {
        // Anchoring starts with the epoch current when it was first turned on.
        const current = String(Math.floor(nowMs / epochMs));
        await c.query("INSERT INTO anchor_meta (key, value) VALUES ('next_epoch', $1), ('first_epoch', $1) ON CONFLICT DO NOTHING", [current]);
        // The lock every builder queues on: an epoch is built by one of them, once.
        const { rows } = await c.query<{ key: string; value: string }>(
          "SELECT key, value FROM anchor_meta WHERE key IN ('first_epoch', 'next_epoch') ORDER BY key FOR UPDATE");
        const first = Number(rows.find((r) => r.key === 'first_epoch')!.value);
        const next = Number(rows.find((r) => r.key === 'next_epoch')!.value);
        if ((next + 1) * epochMs + graceMs > nowMs) return null;
        // A reading committed late (its batch straddled the end) is still found one epoch on.
        const readings = await c.query<{ device: string; seq: number; hash: Buffer }>(
          `SELECT r.device, r.seq, r.hash FROM readings r WHERE r.received_ms >= $1 AND r.received_ms < $2
           AND NOT EXISTS (SELECT 1 FROM anchor_leaves a WHERE a.device = r.device AND a.seq = r.seq)`,
          [Math.max(next - 1, first) * epochMs, (next + 1) * epochMs]);
        await c.query("UPDATE anchor_meta SET value = $1 WHERE key = 'next_epoch'", [String(next + 1)]);
        if (readings.rows.length === 0) return undefined;
        const leaves = readings.rows.map((r) => ({ device: r.device, seq: r.seq, hash: bytes(r.hash) }));
        await c.query('INSERT INTO anchor_leaves (device, seq, epoch, hash) SELECT d, s, $3, h FROM unnest($1::text[], $2::bigint[], $4::bytea[]) AS l(d, s, h)',
          [leaves.map((l) => l.device), leaves.map((l) => l.seq), next, readings.rows.map((r) => r.hash)]);
        const inserted = await c.query<Row>("INSERT INTO anchor_epochs (epoch, root, leaves, state) VALUES ($1, $2, $3, 'built') RETURNING *",
          [next, buildTree(leaves).root, leaves.length]);
        return fromRow(inserted.rows[0]!);
      });
      if (record === null) return built;
      if (record) built.push(record);
    }
  }

  async unfinished(): Promise<EpochRecord[]> {
    return (await this.pool.query<Row>("SELECT * FROM anchor_epochs WHERE state != 'final' ORDER BY epoch")).rows.map(fromRow);
  }

  async epoch(epoch: number): Promise<EpochRecord | undefined> {
    const row = (await this.pool.query<Row>('SELECT * FROM anchor_epochs WHERE epoch = $1', [epoch])).rows[0];
    return row && fromRow(row);
  }

  async update(epoch: number, change: EpochChange): Promise<void> {
    const keys = (Object.keys(change) as (keyof EpochChange)[]).filter((k) => k in COLUMNS);
    if (!keys.length) return;
    const sets = keys.map((k, i) => `${COLUMNS[k]} = $${i + 2}`).join(', ');
    await this.pool.query(`UPDATE anchor_epochs SET ${sets} WHERE epoch = $1`, [epoch, ...keys.map((k) => change[k] ?? null)]);
  }

  async epochOf(device: string, seq: number): Promise<number | undefined> {
    return (await this.leafRow(device, seq))?.epoch;
  }

  async leafOf(device: string, seq: number): Promise<AnchorLeaf | undefined> {
    const row = await this.leafRow(device, seq);
    return row && { device, seq, hash: bytes(row.hash) };
  }

  async leavesOf(epoch: number): Promise<AnchorLeaf[]> {
    const { rows } = await this.pool.query<{ device: string; seq: number; hash: Buffer }>('SELECT device, seq, hash FROM anchor_leaves WHERE epoch = $1', [epoch]);
    return rows.map((r) => ({ device: r.device, seq: r.seq, hash: bytes(r.hash) }));
  }

  /** `nowMs` is not used: the lease runs on the database's clock, the same for every gateway. */
  claimLease(owner: string, _nowMs: number, ttlMs: number): Promise<boolean> {
    return this.transaction(async (c) => {
      await c.query("INSERT INTO anchor_meta (key, value) VALUES ('lease', '{}') ON CONFLICT DO NOTHING");
      const { rows } = await c.query<{ value: string; now: number }>(
        "SELECT value, (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now FROM anchor_meta WHERE key = 'lease' FOR UPDATE");
      const current = JSON.parse(rows[0]!.value) as { owner?: string; untilMs?: number };
      const now = rows[0]!.now;
      if (current.owner !== undefined && current.owner !== owner && current.untilMs! > now) return false;
      await c.query("UPDATE anchor_meta SET value = $1 WHERE key = 'lease'", [JSON.stringify({ owner, untilMs: now + ttlMs })]);
      return true;
    });
  }

  bindChain(chainId: number, contract: string, account?: string): Promise<void> {
    return this.transaction(async (c) => {
      const wanted = `${chainId}:${contract.toLowerCase()}`;
      await c.query("INSERT INTO anchor_meta (key, value) VALUES ('chain', $1) ON CONFLICT DO NOTHING", [wanted]);
      const bound = (await this.meta(c, 'chain'))!;
      if (bound !== wanted) {
        const [id, address] = bound.split(':');
        throw new IopError('CONFIG', `the gateways on this database anchor on chain ${id}, contract ${address}; they will not anchor the same epochs on chain ${chainId}, contract ${contract} (use a new database)`);
      }
      if (account === undefined) return;
      await c.query("INSERT INTO anchor_meta (key, value) VALUES ('account', $1) ON CONFLICT DO NOTHING", [account.toLowerCase()]);
      const sender = (await this.meta(c, 'account'))!;
      if (sender !== account.toLowerCase()) {
        // A successor checks the nonce its predecessor recorded: only meaningful for one key.
        throw new IopError('CONFIG', `the gateways on this database anchor from ${sender}; this gateway's chain key is ${account}: give every gateway on one database the same --chain-key`);
      }
    });
  }

  async queuePairing(relay: Omit<PairingRelay, 'state' | 'tx'>): Promise<void> {
    await this.pool.query("INSERT INTO chain_pairings (device, nonce, claim, state) VALUES ($1, $2, $3, 'pending') ON CONFLICT DO NOTHING",
      [relay.device, relay.nonce, JSON.stringify(relay.claim)]);
  }

  async pairings(state: PairingRelay['state']): Promise<PairingRelay[]> {
    const { rows } = await this.pool.query<{ device: string; nonce: string; claim: string; state: PairingRelay['state']; tx: string | null }>(
      'SELECT device, nonce, claim, state, tx FROM chain_pairings WHERE state = $1 ORDER BY id', [state]);
    return rows.map((r) => ({ ...r, claim: JSON.parse(r.claim) as PairingRelay['claim'] }));
  }

  async updatePairing(device: string, nonce: string, state: PairingRelay['state'], tx: string | null, error?: string): Promise<void> {
    await this.pool.query('UPDATE chain_pairings SET state = $1, tx = $2, error = $3 WHERE device = $4 AND nonce = $5', [state, tx, error ?? null, device, nonce]);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async leafRow(device: string, seq: number): Promise<{ epoch: number; hash: Buffer } | undefined> {
    return (await this.pool.query<{ epoch: number; hash: Buffer }>('SELECT epoch, hash FROM anchor_leaves WHERE device = $1 AND seq = $2', [device, seq])).rows[0];
  }

  private async meta(c: pg.Pool | pg.PoolClient, key: string): Promise<string | undefined> {
    return (await c.query<{ value: string }>('SELECT value FROM anchor_meta WHERE key = $1', [key])).rows[0]?.value;
  }

  private transaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, body);
  }
}
