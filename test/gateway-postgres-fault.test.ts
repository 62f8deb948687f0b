// Scale-out under faults: two gateway processes on one PostgreSQL database and one shared
// subscription, three boxes sampling, and one gateway killed -9 every 10 s for a minute
// (it comes back at once, on its persistent session). Every reading is stored exactly
// once, no receipt ever names a reading the database lacks, every box's queue drains,
// and no device's chain position ever goes back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { verifyReceipt } from '../agent/codec/receipt.ts';
import { postgresBin, startPostgres, type Postgres } from '../harness/postgres.ts';
import { testIf } from './helpers/requires.ts';
import { boxConfig, deviceId, gatewayKey, queued, sleep, testDeployment, until, type Running } from './helpers/system.ts';

const { dir, broker, launch } = testDeployment(test);
const NO_POSTGRES = postgresBin() ? undefined : 'needs PostgreSQL (apt-get install postgresql)';
let postgres: Postgres | undefined;
test.after(async () => postgres?.stop());

const KILL_EVERY_MS = 10_000;
const KILLS = 6;

testIf(NO_POSTGRES, 'two gateways on PostgreSQL, one killed -9 every 10 s for a minute: each reading stored once, queues drain, frontiers never go back', async () => {
  postgres = await startPostgres();
  const url = await postgres.createDatabase();
  const gwDir = join(dir.path, 'gw');
  const key = await gatewayKey(gwDir);
  const gateway = (name: string) => launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--db', url, '--allow-any',
    '--gap-timeout', '2000', '--session', `iop-fault-${name}`]);
  const gateways: Record<string, Running> = { a: gateway('a'), b: gateway('b') };
  await until('both gateways connected', () => Object.values(gateways).every((g) => /connected/.test(g.stderr())), 20_000);

  const db = new pg.Client({ connectionString: url });
  await db.connect();
  // Every chain position seen, per device, polled all along.
  const frontiers = new Map<string, number[]>();
  let watching = true;
  const watch = (async () => {
    while (watching) {
      const { rows } = await db.query('SELECT device, frontier_seq::int AS seq FROM devices WHERE frontier_seq IS NOT NULL');
      for (const row of rows as { device: string; seq: number }[]) {
        const seen = frontiers.get(row.device) ?? [];
        if (seen.at(-1) !== row.seq) seen.push(row.seq);
        frontiers.set(row.device, seen);
      }
      await sleep(50);
    }
  })();
  // Every receipt, checked against the database when it arrives: what it names is stored.
  const uncovered: string[] = [];
  let receipts = 0;
  const checker = new pg.Client({ connectionString: url });
  await checker.connect();
  const watcher = await mqtt.connectAsync(broker.url);
  let checking = Promise.resolve();
  watcher.on('message', (_topic, payload) => {
    let receipt: ReturnType<typeof verifyReceipt>;
    try {
      receipt = verifyReceipt(new Uint8Array(payload));
    } catch (err) {
      uncovered.push(`malformed receipt: ${(err as Error).message}`);
      return;
    }
    checking = checking.then(async () => {
      receipts++;
      for (const range of receipt.ranges) {
        const { rows } = await checker.query('SELECT count(*)::int AS n FROM readings WHERE device = $1 AND seq BETWEEN $2 AND $3', [receipt.device, range.first, range.last]);
        const n = (rows[0] as { n: number }).n;
        if (n !== range.last - range.first + 1) uncovered.push(`${receipt.device} ${range.first}..${range.last}: ${n} stored`);
      }
    });
  });
  await watcher.subscribeAsync('iop/v1/+/ack', { qos: 1 });

  const boxes = ['box-1', 'box-2', 'box-3'];
  const configs = boxes.map((name) => boxConfig(dir.path, name, { gatewayKeys: [key] }, { sampling: { intervalMs: 200 } }));
  let agents = configs.map((config) => launch(['run', '--config', config, '--broker', broker.url]));
  for (let kill = 0; kill < KILLS; kill++) {
    await sleep(KILL_EVERY_MS);
    const name = kill % 2 === 0 ? 'a' : 'b';
    await gateways[name]!.stop('SIGKILL');
    gateways[name] = gateway(name);
  }
  // The boxes stop sampling and send what they hold: every queue must drain.
  for (const agent of agents) assert.is((await agent.stop()).code, 0);
  agents = configs.map((config) => launch(['run', '--config', config, '--broker', broker.url, '--interval', '86400000']));
  await until('every box queue drained', async () => {
    for (const name of boxes) if ((await queued(join(dir.path, name))) > 0) return false;
    return true;
  }, 60_000, 500);
  for (const agent of agents) assert.is((await agent.stop()).code, 0);
  await until('the chain positions at the last reading', async () => {
    const { rows } = await db.query('SELECT count(*)::int AS n FROM devices d WHERE frontier_seq = (SELECT max(seq) FROM readings r WHERE r.device = d.device)');
    return (rows[0] as { n: number }).n === boxes.length;
  }, 20_000, 200);
  watching = false;
  await watch;
  await watcher.endAsync();
  await checking;

  for (const name of boxes) {
    const device = await deviceId(join(dir.path, name));
    const { rows } = await db.query('SELECT count(*)::int AS n, count(DISTINCT seq)::int AS distinct, min(seq)::int AS min, max(seq)::int AS max FROM readings WHERE device = $1', [device]);
    const held = rows[0] as { n: number; distinct: number; min: number; max: number };
    assert.ok(held.max > 100, `${name}: ${held.max + 1} readings over the minute`);
    assert.equal(held, { n: held.max + 1, distinct: held.max + 1, min: 0, max: held.max }, `${name}: every reading 0..${held.max} stored, once`);
    const seen = frontiers.get(device)!;
    assert.ok(seen.every((seq, i) => i === 0 || seq > seen[i - 1]!), `${name}: chain position went back: ${seen.join(',')}`);
    assert.is(seen.at(-1), held.max);
  }
  console.log(`  ${KILLS} kills; readings ${[...frontiers.values()].map((f) => f.at(-1)! + 1).join(', ')}; ${receipts} receipts checked; ${[...frontiers.values()].map((f) => f.length).join(', ')} chain positions seen`);
  assert.ok(receipts > 0);
  assert.equal(uncovered, [], 'receipts name only stored readings');
  await checker.end();
  await db.end();
  for (const g of Object.values(gateways)) await g.stop();
});

test.run();
