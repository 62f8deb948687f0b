// The gateway's store on its own, on both engines (real SQLite; real PostgreSQL when
// installed): runs of linked readings for receipts, the chain walked over a gap after the
// gap timeout, a late reading taken into its gap, readings that contradict their held
// neighbours refused, the receipt's bound on runs, and a SQLite store from before runs
// were kept. PostgreSQL only: two connections storing the same readings, or consecutive
// readings of one device, at the same moment; migrations run once by gateways starting
// together.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { GENESIS_PREV } from '../agent/codec/chain.ts';
import { MAX_RECEIPT_RANGES } from '../agent/codec/receipt.ts';
import type { GatewayStore, IncomingReading } from '../agent/gateway/store.ts';
import { SqliteGatewayStore } from '../agent/gateway/store-sqlite.ts';
import { MIGRATIONS, openPostgresStore } from '../agent/gateway/store-postgres.ts';
import { postgresBin, startPostgres, type Postgres } from '../harness/postgres.ts';
import { runCli, tempDir } from './helpers/cli.ts';
import { testIf } from './helpers/requires.ts';

const dir = tempDir();
const NO_POSTGRES = postgresBin() ? undefined : 'needs PostgreSQL (apt-get install postgresql)';
let server: Postgres | undefined;
test.before(async () => {
  if (!NO_POSTGRES) server = await startPostgres();
});
test.after(async () => {
  await server?.stop();
  dir.remove();
});
const GAP_MS = 1000;
const DEVICE = 'device-a';

/** A stand-in chain: the store checks links and hashes, signatures are the gateway's job before it. */
function chain(length: number, device = DEVICE): IncomingReading[] {
  const readings: IncomingReading[] = [];
  let prev = GENESIS_PREV;
  for (let seq = 0; seq < length; seq++) {
    const message = new TextEncoder().encode(`${device} reading ${seq}`);
    const hash = new Uint8Array(createHash('sha256').update(message).digest());
    readings.push({ device, seq, hash, prev, message, receivedMs: 0 });
    prev = hash;
  }
  return readings;
}

const at = (reading: IncomingReading, ms: number) => ({ ...reading, receivedMs: ms });
const ENGINES: { engine: string; missing: string | undefined; open(name: string): Promise<GatewayStore> }[] = [
  {
    engine: 'SQLite', missing: undefined, async open(name) {
      const state = join(dir.path, name);
      mkdirSync(state, { recursive: true });
      return new SqliteGatewayStore(state, { gapTimeoutMs: GAP_MS });
    },
  },
  { engine: 'PostgreSQL', missing: NO_POSTGRES, async open() { return openPostgresStore(await server!.createDatabase(), { gapTimeoutMs: GAP_MS }); } },
];
const runs = async (store: GatewayStore, device = DEVICE) => (await store.heldRanges(device)).map((r) => [r.first, r.last]);

for (const { engine, missing, open: openStore } of ENGINES) {
  testIf(missing, `${engine}: devices whose names an array literal must quote (quote, backslash, comma, braces, NULL) are stored apart, each whole`, async () => {
    const store = await openStore('quoting');
    const names = ['a"b', 'c\\d', 'e,f', '{g}', 'NULL', 'null', ' h '];
    const readings = names.flatMap((name) => chain(3, name));
    // Interleaved, as a fleet sends them: every reading of the batch is stored in one step.
    readings.sort((a, b) => a.seq - b.seq);
    const results = await store.acceptAll(readings, 0);
    assert.equal(results.map((r) => r.outcome), readings.map(() => 'new'));
    for (const name of names) {
      assert.equal(await runs(store, name), [[0, 2]], name);
      assert.is(await store.count(name), 3, name);
    }
    await store.close();
  });

  testIf(missing, `${engine}: a gap: receipts name both runs at once; the chain passes it after the timeout; the late reading fills it`, async () => {
    const store = await openStore('gap');
    const r = chain(6);
    await store.acceptAll([r[0]!, r[1]!, r[2]!, r[4]!, r[5]!].map((x) => at(x, 0)), 0);
    assert.equal(await runs(store), [[0, 2], [4, 5]]);
    assert.equal((await store.heldRanges(DEVICE))[1]!.hash, r[5]!.hash, 'a run names the hash of its last reading');
    assert.is((await store.frontier(DEVICE))?.seq, 2, 'the chain waits for seq 3');
    const settled = await store.settle(DEVICE, GAP_MS);
    assert.is(settled.missing, 1);
    assert.equal(settled.linked.map((l) => [l.seq, l.chain]), [[4, 'gap'], [5, 'ok']]);
    const late = await store.accept(at(r[3]!, 2 * GAP_MS), 2 * GAP_MS);
    assert.is(late.outcome, 'late');
    assert.equal(late.linked.map((l) => [l.seq, l.chain]), [[3, 'late']]);
    assert.equal(await runs(store), [[0, 5]]);
    assert.is((await store.accept(r[3]!)).outcome, 'duplicate');
    await store.close();
  });

  testIf(missing, `${engine}: several gaps walked over in one step, far from the step's readings: every held run walked, none skipped`, async () => {
    const store = await openStore('gaps');
    const r = chain(40);
    const held = [0, 1, 2, 5, 6, 9, 10, 12, 15, 16, 30];
    await store.acceptAll(held.map((seq) => at(r[seq]!, 0)), 0);
    assert.is((await store.frontier(DEVICE))?.seq, 2);
    // After the gap timeout, readings far above (one joins a held run): the walk passes
    // 3-4, 7-8 and 11, and stops below 14, which came just now. (PostgreSQL reads the runs
    // around the chain position and the step's readings: 9-10 is in neither.)
    const now = 2 * GAP_MS;
    const results = await store.acceptAll([at(r[14]!, now), at(r[35]!, now)], now);
    assert.equal(results.map((x) => x.outcome), ['new', 'new']);
    const linked = results.flatMap((x) => x.linked.map((l) => [l.seq, l.chain]));
    assert.equal(linked, [[5, 'gap'], [6, 'ok'], [9, 'gap'], [10, 'ok'], [12, 'gap']]);
    assert.is(results.reduce((n, x) => n + x.missing, 0), 5);
    assert.is((await store.frontier(DEVICE))?.seq, 12);
    // Once 14 has waited too: 14-16, then 30 after 17-29, then 35 after 31-34.
    const settled = await store.settle(DEVICE, now + GAP_MS);
    assert.equal(settled.linked.map((l) => [l.seq, l.chain]), [[14, 'gap'], [15, 'ok'], [16, 'ok'], [30, 'gap'], [35, 'gap']]);
    assert.is(settled.missing, 1 + 13 + 4);
    assert.equal(await runs(store), [[0, 2], [5, 6], [9, 10], [12, 12], [14, 16], [30, 30], [35, 35]]);
    await store.close();
  });

  testIf(missing, `${engine}: a reading that does not link to a held neighbour is refused, and the held ones stay`, async () => {
    const store = await openStore('broken');
    const r = chain(4);
    const fork = chain(4).map((x) => ({ ...x }));
    fork[2] = { ...r[2]!, message: new Uint8Array([1]), hash: new Uint8Array(32).fill(7) };
    await store.acceptAll([r[0]!, r[1]!, r[3]!], 0);
    assert.is((await store.accept(fork[2]!)).outcome, 'broken', 'its successor does not link to it');
    assert.is((await store.accept({ ...r[2]!, prev: new Uint8Array(32).fill(9) })).outcome, 'broken', 'it does not link to its predecessor');
    assert.is((await store.accept({ ...r[0]!, seq: 0, prev: new Uint8Array(32).fill(1), hash: new Uint8Array(32).fill(2) })).outcome, 'conflict');
    assert.equal(await runs(store), [[0, 1], [3, 3]]);
    assert.is((await store.accept(r[2]!)).outcome, 'new');
    assert.equal(await runs(store), [[0, 3]]);
    await store.close();
  });

  testIf(missing, `${engine}: more runs than a receipt holds: the lowest and the newest`, async () => {
    const store = await openStore('many');
    const r = chain(100);
    await store.acceptAll(r.filter((x) => x.seq % 2 === 0), 0); // 50 runs of one
    const named = await runs(store);
    assert.is(named.length, MAX_RECEIPT_RANGES);
    assert.equal(named[0], [0, 0]);
    assert.equal(named.slice(1), Array.from({ length: MAX_RECEIPT_RANGES - 1 }, (_, i) => 98 - 2 * (MAX_RECEIPT_RANGES - 2 - i)).map((s) => [s, s]));
    await store.close();
  });
}

test('SQLite: a store from before runs: its runs are made from the readings it holds', async () => {
  const state = join(dir.path, 'old');
  const store = await ENGINES[0]!.open('old');
  const r = chain(8);
  await store.acceptAll([0, 1, 2, 5, 6, 7].map((i) => r[i]!), 0);
  await store.close();
  const db = new DatabaseSync(join(state, 'gateway.db'));
  db.exec('DROP TABLE runs');
  // an unlinked reading above the chain position, as the old store could hold
  db.prepare('INSERT INTO readings (device, seq, hash, prev, message, received_ms) VALUES (?, 3, ?, ?, ?, 0)')
    .run(DEVICE, new Uint8Array(32).fill(3), new Uint8Array(32).fill(4), new Uint8Array([3]));
  db.close();
  const reopened = new SqliteGatewayStore(state, { gapTimeoutMs: GAP_MS });
  assert.equal(await runs(reopened), [[0, 2], [5, 7]]);
  assert.is(await reopened.count(DEVICE), 6, 'the unlinked reading was dropped');
  assert.is((await reopened.accept(r[3]!)).outcome, 'new');
  await reopened.close();
});

/** Two gateways' stores on one database, and a third connection watching. */
async function twoGateways(): Promise<{ url: string; a: GatewayStore; b: GatewayStore }> {
  const url = await server!.createDatabase();
  const [a, b] = await Promise.all([openPostgresStore(url, { gapTimeoutMs: GAP_MS }), openPostgresStore(url, { gapTimeoutMs: GAP_MS })]);
  return { url, a, b };
}

/** Polls a device's chain position while `work` runs: every value seen, in order. */
async function frontiersDuring(url: string, devices: string[], work: Promise<unknown>): Promise<Map<string, number[]>> {
  const watcher = new pg.Client({ connectionString: url });
  await watcher.connect();
  const seen = new Map(devices.map((d) => [d, [] as number[]]));
  let done = false;
  void work.finally(() => (done = true)).catch(() => undefined);
  while (!done) {
    const { rows } = await watcher.query('SELECT device, frontier_seq::int AS seq FROM devices WHERE frontier_seq IS NOT NULL');
    for (const row of rows as { device: string; seq: number }[]) seen.get(row.device)?.push(row.seq);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await work;
  await watcher.end();
  return seen;
}

const nonDecreasing = (values: number[]) => values.every((v, i) => i === 0 || v >= values[i - 1]!);

testIf(NO_POSTGRES, 'PostgreSQL: the same readings stored by two connections at once: each stored once, the chain whole', async () => {
  const { url, a, b } = await twoGateways();
  const devices = ['dev-1', 'dev-2', 'dev-3'];
  const readings = devices.flatMap((d) => chain(120, d));
  // Both get every reading, in batches of different sizes, so their steps overlap in every way.
  const feed = async (store: GatewayStore, size: number) => {
    const outcomes: string[] = [];
    for (let i = 0; i < readings.length; i += size) outcomes.push(...(await store.acceptAll(readings.slice(i, i + size), 0)).map((r) => r.outcome));
    return outcomes;
  };
  const work = Promise.all([feed(a, 7), feed(b, 11)]);
  const frontiers = await frontiersDuring(url, devices, work);
  const [fromA, fromB] = await work;
  const stored = [...fromA!, ...fromB!].filter((o) => o === 'new' || o === 'late').length;
  assert.is(stored, readings.length, 'every reading stored by exactly one of them');
  assert.is([...fromA!, ...fromB!].filter((o) => o === 'duplicate').length, readings.length, 'the other saw a duplicate');
  for (const device of devices) {
    assert.is(await a.count(device), 120);
    assert.equal(await runs(b, device), [[0, 119]]);
    assert.is((await a.frontier(device))?.seq, 119);
    assert.ok(nonDecreasing(frontiers.get(device)!), `frontier of ${device} never went back: ${frontiers.get(device)!.join(',')}`);
  }
  await Promise.all([a.close(), b.close()]);
});

testIf(NO_POSTGRES, 'PostgreSQL: consecutive readings of one device at once: no broken links, no frontier going back', async () => {
  const { url, a, b } = await twoGateways();
  const readings = chain(300);
  // a gets the even seqs, b the odd ones, one at a time: every step has a neighbour in flight.
  const feed = async (store: GatewayStore, parity: number) => {
    const outcomes: string[] = [];
    for (const r of readings.filter((x) => x.seq % 2 === parity)) outcomes.push((await store.accept(r, 0)).outcome);
    return outcomes;
  };
  const work = Promise.all([feed(a, 0), feed(b, 1)]);
  const frontiers = await frontiersDuring(url, [DEVICE], work);
  const outcomes = (await work).flat();
  assert.equal([...new Set(outcomes)], ['new'], 'every reading new, none broken or duplicate');
  assert.is(await a.count(DEVICE), 300);
  assert.equal(await runs(a), [[0, 299]]);
  assert.is((await b.frontier(DEVICE))?.seq, 299);
  assert.ok(frontiers.get(DEVICE)!.length > 0 && nonDecreasing(frontiers.get(DEVICE)!), 'the frontier never went back');
  const check = new pg.Client({ connectionString: url });
  await check.connect();
  const dupes = await check.query('SELECT count(*)::int AS n FROM (SELECT device, seq FROM readings GROUP BY 1, 2 HAVING count(*) > 1) d');
  assert.is((dupes.rows[0] as { n: number }).n, 0);
  await check.end();
  await Promise.all([a.close(), b.close()]);
});

testIf(NO_POSTGRES, 'PostgreSQL: a batch of several devices is split by device into side-by-side transactions, or (device affinity) kept whole', async () => {
  const batch = Array.from({ length: 8 }, (_, d) => chain(50, `device-${d}`)).flat();
  const split = await openPostgresStore(await server!.createDatabase(), { gapTimeoutMs: GAP_MS });
  const whole = await openPostgresStore(await server!.createDatabase(), { gapTimeoutMs: GAP_MS, splitBatches: false });
  for (const store of [split, whole]) {
    const results = await store.acceptAll(batch, 0);
    assert.ok(results.every((r) => r.outcome === 'new'));
    for (let d = 0; d < 8; d++) assert.is((await store.frontier(`device-${d}`))?.seq, 49);
  }
  assert.ok(split.transactions > 1, `${split.transactions} transactions`);
  assert.is(whole.transactions, 1);
  await split.close();
  await whole.close();
});

testIf(NO_POSTGRES, 'PostgreSQL: pairings: one claim decided by two gateways at once is recorded once; both see it at start', async () => {
  const { a, b } = await twoGateways();
  const entry = { device: DEVICE, owner: '0x' + '11'.repeat(20), pairedAt: new Date(0).toISOString(), nonce: '0x01', usedNonces: ['0x01'] };
  // The rule of a claim as the gateway applies it: a nonce already recorded is a repeat.
  const decide = (current: { nonce: string } | undefined) => current?.nonce === entry.nonce ? { result: 'repeated' } : { store: entry, result: 'recorded' };
  const outcomes = await Promise.all([a.pairings('').update(DEVICE, decide), b.pairings('').update(DEVICE, decide)]);
  assert.equal(outcomes.sort(), ['recorded', 'repeated']);
  assert.equal(await b.pairings('').all(), [entry]);
  await Promise.all([a.close(), b.close()]);
});

testIf(NO_POSTGRES, 'PostgreSQL: gateways starting together migrate the schema once', async () => {
  const url = await server!.createDatabase();
  const stores = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore(url, { gapTimeoutMs: GAP_MS })));
  const check = new pg.Client({ connectionString: url });
  await check.connect();
  const versions = (await check.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => (r as { version: number }).version);
  assert.equal(versions, MIGRATIONS.map((_, i) => i + 1));
  await check.query('INSERT INTO schema_migrations (version) VALUES (999)');
  await check.end();
  try {
    await openPostgresStore(url, { gapTimeoutMs: GAP_MS });
    assert.unreachable('a newer schema is refused');
  } catch (err) {
    assert.match((err as Error).message, /schema version 999, newer than this gateway/);
  }
  await Promise.all(stores.map((s) => s.close()));
});

test('gateway --db: a URL that is not postgres:// is a usage error; an unreachable database a clear error without its password', async () => {
  const state = join(dir.path, 'cli');
  const usage = await runCli(['gateway', '--broker', 'mqtt://127.0.0.1:1', '--state-dir', state, '--allow-any', '--db', 'gateway.sqlite']);
  assert.is(usage.code, 2);
  assert.match(usage.stderr, /--db takes a postgres:\/\/ URL, not "gateway.sqlite"/);
  const down = await runCli(['gateway', '--broker', 'mqtt://127.0.0.1:1', '--state-dir', state, '--allow-any', '--db', 'postgres://iop:s3cret@127.0.0.1:1/gw']);
  assert.is(down.code, 1);
  assert.match(down.stderr, /cannot open gateway store postgres:\/\/iop:\*\*\*@127\.0\.0\.1:1\/gw: .*ECONNREFUSED/);
  assert.not.match(down.stderr, /s3cret/);
});

test.run();
