// One step's statements on PostgreSQL: the devices' rows locked in order, their chain
// positions, runs and nearby held readings read in one round trip, and the step's
// changes written back; the transaction around them is the store's (store-postgres.ts).
import type pg from 'pg';
import type { DeviceChanges, DeviceSnapshot, HeldRow, IncomingReading, Run } from './store.ts';

/**
 * A statement prepared once per connection (by name), then only bound and run: the steps
 * run the same few statements thousands of times, and parsing and planning them each time
 * cost the database more than running them.
 */
export const prepared = (name: string, text: string) => (values: unknown[]): pg.QueryConfig => ({ name, text, values });

export const bytes = (value: Buffer): Uint8Array => new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
export const toRun = (r: { first: number; last: number; hash: Buffer }): Run => ({ first: r.first, last: r.last, hash: bytes(r.hash) });

export type SeqRange = { low: number; high: number };
/** The most held readings a step reads ahead of the rules, per device. */
const MAX_PREFETCH = 4096;

/** Per device, the seqs a batch touches and their neighbours. */
export function seqRanges(readings: IncomingReading[]): Map<string, SeqRange> {
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
export const HELD_RANGES = prepared('iop-held-ranges',
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
export async function lockDevices(client: pg.PoolClient, wanted: Map<string, SeqRange>, known: Set<string>): Promise<Map<string, DeviceSnapshot>> {
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

/**
 * PostgreSQL array literals for the parameters that hold one element per reading, made
 * here in one join: node-postgres would quote and escape each element (two regular
 * expressions per number), a cost per reading on the gateway's hot path.
 */
export const numberArray = (values: readonly number[]): string => `{${values.join(',')}}`;
export function textArray(values: readonly string[]): string {
  // One device's readings come one after the other: each id is quoted once per run of it.
  let last: string | undefined;
  let quoted = '';
  return `{${values.map((v) => (v === last ? quoted : (last = v, quoted = `"${v.replace(/[\\"]/g, '\\$&')}"`))).join(',')}}`;
}

/** Writes what the steps changed: a few statements for the whole batch. */
export async function write(client: pg.PoolClient, changes: DeviceChanges[]): Promise<void> {
  const devices: string[] = [];
  const seqs: number[] = [];
  const at: number[] = [];
  const hashSizes: number[] = [];
  const prevSizes: number[] = [];
  const messageSizes: number[] = [];
  const receivedMs: number[] = [];
  let size = 0;
  for (const c of changes) {
    for (const r of c.inserted) {
      devices.push(c.device);
      seqs.push(r.seq);
      at.push(size);
      hashSizes.push(r.hash.length);
      prevSizes.push(r.prev.length);
      messageSizes.push(r.message.length);
      receivedMs.push(r.receivedMs);
      size += r.hash.length + r.prev.length + r.message.length;
    }
  }
  if (devices.length) {
    // No ON CONFLICT: under the device lock a reading is inserted only if it is not held,
    // so a duplicate key here is a bug to roll back, not a case to paper over.
    const blob = Buffer.allocUnsafe(size);
    let offset = 0;
    for (const c of changes) {
      for (const r of c.inserted) {
        blob.set(r.hash, offset);
        blob.set(r.prev, offset += r.hash.length);
        blob.set(r.message, offset += r.prev.length);
        offset += r.message.length;
      }
    }
    await client.query(INSERT_READINGS([textArray(devices), numberArray(seqs), blob, numberArray(at),
      numberArray(hashSizes), numberArray(prevSizes), numberArray(messageSizes), numberArray(receivedMs)]));
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
