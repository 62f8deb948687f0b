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
// A batch is split by device into a few groups (the same split in every gateway), one
// transaction each, run side by side: two gateways whose batches hold readings of the
// same devices (a shared subscription hands them out in turn) then wait on each other
// per group, not for the whole batch, and their commits overlap.
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
  type AcceptResult, type DeviceChanges, type DeviceSnapshot, type GatewayStore, type HeldRow, type IncomingReading, type Run, type StepResult,
} from './store.ts';
import type { PairingDecision, PairingEntry, PairingStore } from './pairing-store.ts';

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

/**
 * A statement prepared once per connection (by name), then only bound and run: the steps
 * run the same few statements thousands of times, and parsing and planning them each time
 * cost the database more than running them.
 */
const prepared = (name: string, text: string) => (values: unknown[]): pg.QueryConfig => ({ name, text, values });

const bytes = (value: Buffer): Uint8Array => new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
const toRun = (r: { first: number; last: number; hash: Buffer }): Run => ({ first: r.first, last: r.last, hash: bytes(r.hash) });

export async function openPostgresStore(url: string, options: { gapTimeoutMs: number; poolSize?: number }): Promise<PostgresGatewayStore> {
  const pool = new pg.Pool({ connectionString: url, types, max: options.poolSize ?? 4, application_name: 'iop-gateway' });
  // A broken connection in the idle pool must not crash the gateway: the next query reconnects.
  pool.on('error', () => undefined);
  try {
    await migrate(pool);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new IopError('STORE', `cannot open gateway store ${redact(url)}: ${errorMessage(err)}`, { db: redact(url) }, { cause: err });
  }
  return new PostgresGatewayStore(pool, options.gapTimeoutMs, Math.max(1, (options.poolSize ?? 4) - 1));
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
  private readonly pool: pg.Pool;
  private readonly gapTimeoutMs: number;

  /** transactions a batch is split into, by device */
  private readonly groups: number;
  /** devices whose row in `devices` this store has seen (rows are never deleted) */
  private readonly known = new Set<string>();

  constructor(pool: pg.Pool, gapTimeoutMs: number, groups = 4) {
    this.pool = pool;
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

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async transaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await inTransaction(this.pool, body);
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

type SeqRange = { low: number; high: number };
/** The most held readings a step reads ahead of the rules, per device. */
const MAX_PREFETCH = 4096;

/** Per device, the seqs a batch touches and their neighbours. */
function seqRanges(readings: IncomingReading[]): Map<string, SeqRange> {
  const ranges = new Map<string, SeqRange>();
  for (const { device, seq } of readings) {
    const range = ranges.get(device) ?? { low: Infinity, high: -Infinity };
    ranges.set(device, { low: Math.min(range.low, seq - 1), high: Math.max(range.high, seq + 1) });
  }
  return ranges;
}

// The statements of every step, prepared once per connection.
const INSERT_DEVICES = prepared('iop-insert-devices', 'INSERT INTO devices (device) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT DO NOTHING');
const LOCK_DEVICES = prepared('iop-lock-devices',
  'SELECT device, frontier_seq AS seq, frontier_hash AS hash FROM devices WHERE device = ANY($1) ORDER BY device FOR UPDATE');
/** Per range: the run holding or below its low end, those starting in it, the first above it. */
const RUNS_AROUND = prepared('iop-runs-around',
  `SELECT DISTINCT ON (k.device, r.first) k.device, r.first, r.last, r.hash FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS k(device, low, high)
   CROSS JOIN LATERAL (
     (SELECT first, last, hash FROM runs WHERE device = k.device AND first <= k.low ORDER BY first DESC LIMIT 1)
     UNION ALL (SELECT first, last, hash FROM runs WHERE device = k.device AND first > k.low AND first <= k.high)
     UNION ALL (SELECT first, last, hash FROM runs WHERE device = k.device AND first > k.high ORDER BY first LIMIT 1)) AS r`);
const RUN_ABOVE = prepared('iop-run-above', 'SELECT first, last, hash FROM runs WHERE device = $1 AND first > $2 ORDER BY first LIMIT 1');
const READINGS_IN = prepared('iop-readings-in',
  `SELECT r.device, r.seq, r.hash, r.prev, r.message, r.received_ms FROM readings r
   JOIN unnest($1::text[], $2::bigint[], $3::bigint[]) AS k(device, low, high) ON r.device = k.device AND r.seq BETWEEN k.low AND k.high`);
/**
 * The readings' bytes (hash, prev and message of each, one after the other) come as one
 * bytea parameter, which node-postgres sends as it is (binary); a bytea[] parameter would
 * go as text, every byte written as two hex digits by the gateway and read back by the
 * database.
 */
const INSERT_READINGS = prepared('iop-insert-readings',
  `INSERT INTO readings (device, seq, hash, prev, message, received_ms)
   SELECT k.device, k.seq, substring($3::bytea FROM k.at + 1 FOR k.hash_size), substring($3::bytea FROM k.at + k.hash_size + 1 FOR k.prev_size),
     substring($3::bytea FROM k.at + k.hash_size + k.prev_size + 1 FOR k.message_size), k.received_ms
   FROM unnest($1::text[], $2::bigint[], $4::int[], $5::int[], $6::int[], $7::int[], $8::bigint[])
     AS k(device, seq, at, hash_size, prev_size, message_size, received_ms)`);
const DELETE_RUNS = prepared('iop-delete-runs',
  'DELETE FROM runs r USING unnest($1::text[], $2::bigint[]) AS d(device, first) WHERE r.device = d.device AND r.first = d.first');
const UPSERT_RUNS = prepared('iop-upsert-runs',
  `INSERT INTO runs (device, first, last, hash) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bytea[])
   ON CONFLICT (device, first) DO UPDATE SET last = excluded.last, hash = excluded.hash`);
const MOVE_FRONTIERS = prepared('iop-move-frontiers',
  `UPDATE devices d SET frontier_seq = m.seq, frontier_hash = m.hash FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS m(device, seq, hash)
   WHERE d.device = m.device AND (d.frontier_seq IS NULL OR d.frontier_seq < m.seq)`);
const HELD_RANGES = prepared('iop-held-ranges',
  `(SELECT first, last, hash, true AS lowest FROM runs WHERE device = $1 ORDER BY first LIMIT 1)
   UNION ALL (SELECT first, last, hash, false FROM runs WHERE device = $1 ORDER BY first DESC LIMIT $2)`);

type ReadingRow = { device: string; seq: number; hash: Buffer; prev: Buffer; message: Buffer; received_ms: number };
const toHeld = (r: ReadingRow): HeldRow => ({ seq: r.seq, hash: bytes(r.hash), prev: bytes(r.prev), message: bytes(r.message), receivedMs: r.received_ms });

/**
 * Locks the devices' rows (made on first sight) in device order, then reads their chain
 * positions and runs: a step sees every step of these devices before it, and none runs
 * beside it. The held readings the rules will look at (the batch's neighbours, and the
 * ones from the chain position up, which the walk publishes) are read in the same
 * round trip for all devices; any other one on demand.
 */
async function lockDevices(client: pg.PoolClient, wanted: Map<string, SeqRange>, known: Set<string>): Promise<Map<string, DeviceSnapshot>> {
  const sorted = [...wanted.keys()].sort();
  // A device's row, once there, stays: only devices this store has not seen cost an insert
  // (made in device order, like the locks, so that two steps never wait in a circle).
  const unseen = sorted.filter((d) => !known.has(d));
  if (unseen.length) {
    await client.query(INSERT_DEVICES([unseen]));
  }
  const locked = await client.query<{ device: string; seq: number | null; hash: Buffer | null }>(LOCK_DEVICES([sorted]));
  if (locked.rows.length !== sorted.length) {
    // Taken for known, but its insert was rolled back: forget it, and the step runs again.
    for (const d of sorted) known.delete(d);
    throw Object.assign(new Error('a device row is missing'), { code: '40001' });
  }
  for (const d of unseen) known.add(d);
  // Not every run: while two gateways share a device one of them may hold thousands of
  // single readings above a gap. Those around the chain position and around the batch's
  // readings, with the first run above each, are all a step looks at before a gap is
  // walked over (DeviceLedger asks for more after that).
  const around = locked.rows.flatMap((row) => {
    const frontier = row.seq ?? -1;
    const batch = wanted.get(row.device)!;
    return [{ device: row.device, low: frontier, high: frontier + 1 }, ...(batch.high >= batch.low ? [{ device: row.device, ...batch }] : [])];
  });
  const runs = await client.query<{ device: string; first: number; last: number; hash: Buffer }>(
    RUNS_AROUND([around.map((a) => a.device), around.map((a) => a.low), around.map((a) => a.high)]));
  const runsOf = new Map<string, Run[]>(locked.rows.map((row) => [row.device, []]));
  for (const run of runs.rows) runsOf.get(run.device)!.push(toRun(run));
  for (const list of runsOf.values()) list.sort((a, b) => a.first - b.first);
  const ranges = locked.rows.flatMap((row) => prefetchRanges(wanted.get(row.device)!, row.seq ?? -1, runsOf.get(row.device)!)
    .map(([low, high]) => ({ device: row.device, low, high })));
  const prefetched = new Map<string, Map<number, HeldRow>>(locked.rows.map((row) => [row.device, new Map()]));
  const fetch = async (wantedRanges: { device: string; low: number; high: number }[]) => {
    const held = await client.query<ReadingRow>(
      READINGS_IN([wantedRanges.map((r) => r.device), wantedRanges.map((r) => r.low), wantedRanges.map((r) => r.high)]));
    for (const r of held.rows) prefetched.get(r.device)!.set(r.seq, toHeld(r));
  };
  if (ranges.length) await fetch(ranges);
  const snapshots = new Map<string, DeviceSnapshot>();
  for (const row of locked.rows) {
    const rows = prefetched.get(row.device)!;
    const deviceRuns = runsOf.get(row.device)!;
    snapshots.set(row.device, {
      frontier: row.seq === null ? undefined : { seq: row.seq, hash: bytes(row.hash!) },
      runs: deviceRuns,
      row: async (seq) => {
        const cached = rows.get(seq);
        if (cached) return cached;
        // Not read ahead (a walk past a declared gap): the rest of its run in one read.
        const run = deviceRuns[runIndexAt(deviceRuns, seq)];
        if (!run || seq > run.last) return undefined;
        await fetch([{ device: row.device, low: seq, high: Math.min(run.last, seq + MAX_PREFETCH - 1) }]);
        return rows.get(seq);
      },
      runAbove: async (seq) => {
        const found = await client.query<{ first: number; last: number; hash: Buffer }>(RUN_ABOVE([row.device, seq]));
        const run = found.rows[0] && toRun(found.rows[0]);
        if (run && !deviceRuns.some((r) => r.first === run.first)) deviceRuns.splice(runIndexAt(deviceRuns, run.first) + 1, 0, run);
        return run;
      },
    });
  }
  return snapshots;
}

/** The index of the run holding `seq` if any (else of the run below it, or -1). */
function runIndexAt(runs: Run[], seq: number): number {
  let low = 0;
  let high = runs.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (runs[mid]!.first <= seq) low = mid + 1;
    else high = mid;
  }
  return low - 1;
}

/**
 * The held readings a step will look at, read ahead in one round trip: the batch's seqs
 * and their neighbours; the run right above the chain position (the walk publishes it);
 * and the first reading of the run above where that walk stops (its receive time decides
 * a gap). Not everything from the chain position up: while two gateways share a device,
 * one of them may hold thousands of readings above a gap, which no walk reaches yet.
 */
function prefetchRanges(batch: SeqRange, frontier: number, runs: Run[]): [number, number][] {
  const ranges: [number, number][] = [];
  if (batch.high >= batch.low) ranges.push([batch.low, batch.high]);
  let walkEnd = frontier;
  const at = runs[runIndexAt(runs, frontier + 1)];
  if (at && at.last > frontier) {
    walkEnd = at.last;
    ranges.push([frontier + 1, Math.min(at.last, frontier + MAX_PREFETCH)]);
  }
  const above = runs[runIndexAt(runs, walkEnd) + 1];
  if (above) ranges.push([above.first, above.first]);
  return ranges;
}

/** Writes what the steps changed: a few statements for the whole batch. */
async function write(client: pg.PoolClient, changes: DeviceChanges[]): Promise<void> {
  const inserted = changes.flatMap((c) => c.inserted.map((r) => ({ device: c.device, ...r })));
  if (inserted.length) {
    // No ON CONFLICT: under the device lock a reading is inserted only if it is not held,
    // so a duplicate key here is a bug to roll back, not a case to paper over.
    const at: number[] = [];
    let size = 0;
    for (const r of inserted) {
      at.push(size);
      size += r.hash.length + r.prev.length + r.message.length;
    }
    const blob = Buffer.allocUnsafe(size);
    inserted.forEach((r, i) => {
      blob.set(r.hash, at[i]);
      blob.set(r.prev, at[i]! + r.hash.length);
      blob.set(r.message, at[i]! + r.hash.length + r.prev.length);
    });
    await client.query(INSERT_READINGS([inserted.map((r) => r.device), inserted.map((r) => r.seq), blob, at,
      inserted.map((r) => r.hash.length), inserted.map((r) => r.prev.length), inserted.map((r) => r.message.length), inserted.map((r) => r.receivedMs)]));
  }
  const deleted = changes.flatMap((c) => c.deletedRuns.map((first) => ({ device: c.device, first })));
  if (deleted.length) {
    await client.query(DELETE_RUNS([deleted.map((d) => d.device), deleted.map((d) => d.first)]));
  }
  const upserted = changes.flatMap((c) => c.upsertedRuns.map((run) => ({ device: c.device, ...run })));
  if (upserted.length) {
    await client.query(UPSERT_RUNS([upserted.map((r) => r.device), upserted.map((r) => r.first), upserted.map((r) => r.last), upserted.map((r) => Buffer.from(r.hash))]));
  }
  const moved = changes.filter((c) => c.frontier);
  if (moved.length) {
    // The lock makes this the only writer: the position only moves forward (DeviceLedger),
    // and the guard says so again in the database.
    await client.query(MOVE_FRONTIERS([moved.map((c) => c.device), moved.map((c) => c.frontier!.seq), moved.map((c) => Buffer.from(c.frontier!.hash))]));
  }
}
