// The gateway store in PostgreSQL: several gateway processes on several machines share
// one database (and one MQTT shared subscription), so two of them may get the same
// reading, or consecutive readings of one device, at the same moment.
//
// Concurrency: every step is a READ COMMITTED transaction that first locks the rows of
// the devices it touches (`devices`, SELECT … FOR UPDATE, in device order so that two
// batches never wait on each other in a circle). Everything a step reads of a device
// (its chain position, runs and readings) is read after the lock, and every statement in
// READ COMMITTED sees what the previous holder committed: the steps of one device run one
// after the other across all gateways, exactly as in SQLite's single writer, while steps
// of different devices run in parallel. Chosen over SERIALIZABLE with retries because a
// device's readings come in bursts (a box draining its queue through several gateways):
// retries would repeat the same conflicts, a lock queues them once; and over bare
// INSERT … ON CONFLICT because runs and the chain position are read-modify-write state,
// not only rows to deduplicate. Deadlocks (a lock order we did not foresee) and
// serialization failures are still retried.
//
// Without device affinity (splitBatches), a batch is split by device into a few groups
// (the same split in every gateway), one transaction each, run side by side: two gateways
// whose batches hold readings of the same devices (a shared subscription hands them out in
// turn) then wait on each other per group, not for the whole batch, and their commits
// overlap. With affinity a device's readings reach one gateway, and one transaction per
// batch costs that gateway about 20 µs of CPU less per reading (its statements are
// per transaction) and the database a third less (bench:gateway).
//
// The schema is versioned (schema_migrations) and migrated at start under an advisory
// lock, so gateways starting together migrate once.
import pg from 'pg';
import type { ChainLink } from '../codec/chain.ts';
import type { ReceiptRange } from '../codec/receipt.ts';
import { MAX_RECEIPT_RANGES } from '../codec/receipt.ts';
import { IopError, errorMessage } from '../errors.ts';
import {
  DeviceLedger, acceptBatch, receiptRanges, redact,
  type AcceptResult, type GatewayStore, type IncomingReading, type StepResult,
} from './store.ts';
import type { PairingDecision, PairingEntry, PairingStore } from './pairing-store.ts';
import { HELD_RANGES, bytes, lockDevices, seqRanges, toRun, write } from './postgres-step.ts';
import type { GatewayMembership } from './affinity.ts';
import { PostgresMembership } from './membership-postgres.ts';

/** Ordered schema versions: never edit one that has shipped, add the next. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE devices (device text PRIMARY KEY, frontier_seq bigint, frontier_hash bytea);
   CREATE TABLE readings (device text NOT NULL, seq bigint NOT NULL, hash bytea NOT NULL, prev bytea NOT NULL,
     message bytea NOT NULL, received_ms bigint NOT NULL, PRIMARY KEY (device, seq));
   CREATE TABLE runs (device text NOT NULL, first bigint NOT NULL, last bigint NOT NULL, hash bytea NOT NULL,
     PRIMARY KEY (device, first));
   CREATE UNIQUE INDEX runs_by_last ON runs (device, last);`,
  `CREATE TABLE pairings (device text PRIMARY KEY, owner text NOT NULL, paired_at text NOT NULL, nonce text NOT NULL,
     used_nonces text[] NOT NULL);`,
  // Anchoring (anchor-ledger-postgres.ts): epochs and their leaves, each epoch's pending
  // transaction (nonce, hash) so whichever gateway anchors next checks it before sending
  // again, pairings waiting for the chain, and the readings by receive time for the builds.
  `CREATE INDEX readings_by_received ON readings (received_ms);
   CREATE TABLE anchor_meta (key text PRIMARY KEY, value text NOT NULL);
   CREATE TABLE anchor_epochs (epoch bigint PRIMARY KEY, root text NOT NULL, leaves integer NOT NULL, state text NOT NULL,
     nonce bigint, tx text, sends integer NOT NULL DEFAULT 0, block bigint, chain_id bigint, contract text);
   CREATE TABLE anchor_leaves (device text NOT NULL, seq bigint NOT NULL, epoch bigint NOT NULL, hash bytea NOT NULL,
     PRIMARY KEY (device, seq));
   CREATE INDEX anchor_leaves_by_epoch ON anchor_leaves (epoch);
   CREATE TABLE chain_pairings (id bigserial, device text NOT NULL, nonce text NOT NULL, claim text NOT NULL, state text NOT NULL,
     tx text, error text, PRIMARY KEY (device, nonce));`,
  // Device affinity (affinity.ts): the gateways alive now, each under a lease on the
  // database's clock, and each device's ordinal (in the order gateways first saw them),
  // from which every gateway derives the same owner of each device.
  `CREATE TABLE gateways (name text PRIMARY KEY, expires timestamptz NOT NULL);
   CREATE TABLE device_ordinals (device text PRIMARY KEY, ordinal bigint NOT NULL UNIQUE);`,
];

/** Any fixed number: the advisory lock every gateway takes to migrate. */
const MIGRATION_LOCK = 0x1_0b_ea_7e;
const RETRYABLE = new Set(['40001', '40P01']);
/** readings a transaction of a split batch holds at least */
const MIN_GROUP = 100;
const MAX_ATTEMPTS = 8;

// bigint columns come back as strings unless told: seqs and times fit a JS number.
export const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export async function openPostgresStore(url: string, options: { gapTimeoutMs: number; poolSize?: number; splitBatches?: boolean }): Promise<PostgresGatewayStore> {
  const pool = new pg.Pool({ connectionString: url, types, max: options.poolSize ?? 4, application_name: 'iop-gateway' });
  // A broken connection in the idle pool must not crash the gateway: the next query reconnects.
  pool.on('error', () => undefined);
  try {
    await migrate(pool);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new IopError('STORE', `cannot open gateway store ${redact(url)}: ${errorMessage(err)}`, { db: redact(url) }, { cause: err });
  }
  return new PostgresGatewayStore(pool, options.gapTimeoutMs, options.splitBatches === false ? 1 : Math.max(1, (options.poolSize ?? 4) - 1), url);
}

export async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // Held until commit: a second gateway starting now waits here, then sees the versions done.
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const done = (await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')).rows[0]!.v ?? 0;
    if (done > MIGRATIONS.length) throw new Error(`the database has schema version ${done}, newer than this gateway's ${MIGRATIONS.length}: update the gateway`);
    for (let version = done + 1; version <= MIGRATIONS.length; version++) {
      await client.query(MIGRATIONS[version - 1]!);
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export class PostgresGatewayStore implements GatewayStore {
  readonly engine = 'postgres';
  /** how many transactions were run again after a deadlock or serialization failure */
  retries = 0;
  /** transactions committed */
  transactions = 0;
  private readonly pool: pg.Pool;
  private readonly gapTimeoutMs: number;

  /** transactions a batch is split into, by device */
  private readonly groups: number;
  /** devices whose row in `devices` this store has seen (rows are never deleted) */
  private readonly known = new Set<string>();

  /** for the membership's connection of its own */
  private readonly url: string | undefined;

  constructor(pool: pg.Pool, gapTimeoutMs: number, groups = 4, url?: string) {
    this.pool = pool;
    this.url = url;
    this.gapTimeoutMs = gapTimeoutMs;
    this.groups = groups;
  }

  async acceptAll(readings: IncomingReading[], nowMs = Date.now()): Promise<AcceptResult[]> {
    // Small batches stay whole: each transaction costs round trips whatever its size.
    const groups = Math.max(1, Math.min(this.groups, Math.floor(readings.length / MIN_GROUP)));
    const parts = new Map<number, number[]>();
    readings.forEach((reading, i) => {
      const group = deviceGroup(reading.device, groups);
      const part = parts.get(group);
      if (part) part.push(i);
      else parts.set(group, [i]);
    });
    const results: AcceptResult[] = new Array(readings.length);
    await Promise.all([...parts.values()].map(async (indexes) => {
      const part = indexes.map((i) => readings[i]!);
      const stored = await this.transaction(async (client) => {
        const snapshots = await lockDevices(client, seqRanges(part), this.known);
        const { results, ledgers } = await acceptBatch(part, nowMs, this.gapTimeoutMs, async (device) => snapshots.get(device)!);
        await write(client, ledgers.map((l) => l.changes()));
        return results;
      });
      stored.forEach((result, j) => (results[indexes[j]!] = result));
    }));
    return results;
  }

  async accept(reading: IncomingReading, nowMs = Date.now()): Promise<AcceptResult> {
    return (await this.acceptAll([reading], nowMs))[0]!;
  }

  settle(device: string, nowMs = Date.now()): Promise<StepResult> {
    return this.transaction(async (client) => {
      const snapshots = await lockDevices(client, new Map([[device, { low: Infinity, high: -Infinity }]]), this.known);
      const ledger = new DeviceLedger(device, snapshots.get(device)!, this.gapTimeoutMs);
      const result = await ledger.advance(nowMs);
      await write(client, [ledger.changes()]);
      return result;
    });
  }

  async heldRanges(device: string): Promise<ReceiptRange[]> {
    // One statement, one snapshot: the lowest and newest runs as committed together.
    const { rows } = await this.pool.query<{ first: number; last: number; hash: Buffer; lowest: boolean }>(HELD_RANGES([device, MAX_RECEIPT_RANGES - 1]));
    const lowest = rows.find((r) => r.lowest);
    return receiptRanges(lowest && toRun(lowest), rows.filter((r) => !r.lowest).map(toRun));
  }

  async pendingDevices(): Promise<string[]> {
    const { rows } = await this.pool.query<{ device: string }>(
      'SELECT DISTINCT r.device FROM runs r JOIN devices d ON d.device = r.device WHERE d.frontier_seq IS NULL OR r.last > d.frontier_seq');
    return rows.map((r) => r.device);
  }

  async frontier(device: string): Promise<ChainLink | undefined> {
    const { rows } = await this.pool.query<{ seq: number; hash: Buffer }>(
      'SELECT frontier_seq AS seq, frontier_hash AS hash FROM devices WHERE device = $1 AND frontier_seq IS NOT NULL', [device]);
    return rows[0] && { seq: rows[0].seq, hash: bytes(rows[0].hash) };
  }

  async count(device: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('SELECT count(*)::bigint AS n FROM readings WHERE device = $1', [device]);
    return rows[0]!.n;
  }

  pairings(): PairingStore {
    return {
      all: async () => (await this.pool.query<PairingRow>('SELECT device, owner, paired_at, nonce, used_nonces FROM pairings')).rows.map(toPairing),
      update: <T>(device: string, decide: (current: PairingEntry | undefined) => PairingDecision<T>) => this.transaction(async (client) => {
        // The device's row in `devices` is the lock of every step on the device, pairing included.
        await lockDevices(client, new Map([[device, { low: Infinity, high: -Infinity }]]), this.known);
        const { rows } = await client.query<PairingRow>('SELECT device, owner, paired_at, nonce, used_nonces FROM pairings WHERE device = $1', [device]);
        const decision = decide(rows[0] && toPairing(rows[0]));
        const entry = decision.store;
        if (entry) {
          await client.query(
            `INSERT INTO pairings (device, owner, paired_at, nonce, used_nonces) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (device) DO UPDATE SET owner = excluded.owner, paired_at = excluded.paired_at, nonce = excluded.nonce, used_nonces = excluded.used_nonces`,
            [entry.device, entry.owner, entry.pairedAt, entry.nonce, entry.usedNonces]);
        }
        return decision.result;
      }),
    };
  }

  /** The gateways sharing this database (one row each, under a lease): device affinity. */
  membership(): GatewayMembership {
    if (!this.url) throw new Error('no database URL for the gateways\' table');
    return new PostgresMembership(this.url);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async transaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await inTransaction(this.pool, body);
        this.transactions++;
        return result;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (!code || !RETRYABLE.has(code) || attempt >= MAX_ATTEMPTS) throw err;
        this.retries++;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
      }
    }
  }
}

/** One transaction on a connection of the pool, rolled back if `body` throws. */
export async function inTransaction<T>(pool: pg.Pool, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await body(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
    throw err;
  } finally {
    // A connection whose rollback failed is dropped, not handed to the next step.
    client.release(broken);
  }
}

/** The group of a device: FNV-1a of its id, the same in every gateway. */
function deviceGroup(device: string, groups: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < device.length; i++) h = Math.imul(h ^ device.charCodeAt(i), 0x01000193);
  return (h >>> 0) % groups;
}

type PairingRow = { device: string; owner: string; paired_at: string; nonce: string; used_nonces: string[] };
const toPairing = (r: PairingRow): PairingEntry => ({ device: r.device, owner: r.owner, pairedAt: r.paired_at, nonce: r.nonce, usedNonces: r.used_nonces });
