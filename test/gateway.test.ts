// The reference gateway: two instances sharing the load through one shared
// subscription, and hostile input to the gateway and to a subscriber.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import mqtt from 'mqtt';
import pg from 'pg';
import { splitCborSequence } from '../agent/codec/cbor.ts';
import { runCli } from './helpers/cli.ts';
import { testDeployment, boxConfig, gatewayKey, queued, readings, sleep, start, until } from './helpers/system.ts';
import { deviceId } from './helpers/system.ts';
import { testIf } from './helpers/requires.ts';
import { postgresBin, startPostgres, type Postgres } from '../harness/postgres.ts';

const { dir, broker, launch } = testDeployment(test);
const NO_POSTGRES = postgresBin() ? undefined : 'needs PostgreSQL (apt-get install postgresql)';
let postgres: Postgres | undefined;
test.after(async () => postgres?.stop());

/** What a gateway store holds of a device: its seqs in order and its chain position. */
type Held = (device: string) => Promise<{ seqs: number[]; frontier: number | undefined }>;

function sqliteHeld(gwDir: string): { held: Held; close(): void } {
  const db = new DatabaseSync(join(gwDir, 'gateway.db'));
  return {
    held: async (device) => ({
      seqs: (db.prepare('SELECT seq FROM readings WHERE device = ? ORDER BY seq').all(device) as { seq: number }[]).map((r) => r.seq),
      frontier: (db.prepare('SELECT seq FROM frontier WHERE device = ?').get(device) as { seq: number } | undefined)?.seq,
    }),
    close: () => db.close(),
  };
}

async function postgresHeld(url: string): Promise<{ held: Held; close(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    held: async (device) => ({
      seqs: (await client.query('SELECT seq::int FROM readings WHERE device = $1 ORDER BY seq', [device])).rows.map((r) => (r as { seq: number }).seq),
      frontier: ((await client.query('SELECT frontier_seq::int AS seq FROM devices WHERE device = $1', [device])).rows[0] as { seq: number } | undefined)?.seq,
    }),
    close: () => client.end(),
  };
}


for (const engine of ['SQLite', 'PostgreSQL'] as const) testIf(engine === 'PostgreSQL' ? NO_POSTGRES : undefined,
  `two gateways on one shared subscription split the load; receipts stay correct (${engine})`, async () => {
  const gwDir = join(dir.path, `shared-gw-${engine}`);
  const key = await gatewayKey(gwDir);
  let url: string | undefined;
  if (engine === 'PostgreSQL') url = await (postgres ??= await startPostgres()).createDatabase();
  // The shared subscription's split (device affinity on PostgreSQL splits by device: gateway-affinity.test.ts).
  const db = url ? ['--db', url, '--no-affinity'] : [];
  const a = launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any', ...db]);
  const b = launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any', ...db]);
  await until('both gateways connected', () => /connected/.test(a.stderr()) && /connected/.test(b.stderr()), 10_000);
  const boxes = [`box-a-${engine}`, `box-b-${engine}`];
  for (const name of boxes) {
    const sample = await runCli(['sample', '--count', '300', '--out', '/dev/null', '--state-dir', join(dir.path, name)]);
    assert.is(sample.code, 0, sample.stderr);
  }
  const agents = boxes.map((name) => launch(['run', '--config', boxConfig(dir.path, name, { gatewayKeys: [key] }), '--broker', broker.url, '--interval', '86400000']));
  await until('both queues drained', async () => {
    for (const name of boxes) if ((await queued(join(dir.path, name))) > 0) return false;
    return true;
  }, 60_000, 500);
  for (const agent of agents) assert.is((await agent.stop()).code, 0);
  const statsA = JSON.parse((await a.stop()).stdout.toString());
  const statsB = JSON.parse((await b.stop()).stdout.toString());
  assert.ok(statsA.accepted > 0 && statsB.accepted > 0, `load split: ${statsA.accepted} + ${statsB.accepted}`);
  assert.is(statsA.accepted + statsB.accepted, 600);
  const store = url ? await postgresHeld(url) : sqliteHeld(gwDir);
  for (const name of boxes) {
    const held = await store.held(await deviceId(join(dir.path, name)));
    assert.equal(held.seqs, Array.from({ length: 300 }, (_, i) => i));
    assert.is(held.frontier, 299);
  }
  await store.close();
});

test('bad MQTT input to the gateway and a subscriber is rejected and counted, never a crash', async () => {
  const gwDir = join(dir.path, 'gw-bad');
  const boxDir = join(dir.path, 'victim');
  const otherDir = join(dir.path, 'other');
  const victim = await deviceId(boxDir);
  const other = await deviceId(otherDir);
  const gateway = launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow', victim, '--allow', other, '--gap-timeout', '600000']);
  const subscriber = launch(['subscribe', '--broker', broker.url, '--json']);
  await until('connected', () => /connected/.test(gateway.stderr()) && /connected/.test(subscriber.stderr()), 10_000);

  const file = join(dir.path, 'victim.cbor');
  assert.is((await runCli(['sample', '--count', '3', '--out', file, '--state-dir', boxDir])).code, 0);
  const [m0, m1, m2] = splitCborSequence(readFileSync(file)).map((i) => Buffer.from(i.bytes));
  const otherFile = join(dir.path, 'other.cbor');
  assert.is((await runCli(['sample', '--count', '1', '--out', otherFile, '--state-dir', otherDir])).code, 0);
  const [o0] = splitCborSequence(readFileSync(otherFile)).map((i) => Buffer.from(i.bytes));
  const stranger = await deviceId(join(dir.path, 'stranger'));
  await runCli(['sample', '--count', '1', '--out', join(dir.path, 'stranger.cbor'), '--state-dir', join(dir.path, 'stranger')]);
  const [s0] = splitCborSequence(readFileSync(join(dir.path, 'stranger.cbor'))).map((i) => Buffer.from(i.bytes));

  const badSignature = Buffer.from(m1!);
  badSignature[badSignature.length - 5]! ^= 0x01;
  const topic = (id: string) => `iop/v1/${id}/data`;
  const client = await mqtt.connectAsync(broker.url);
  const send = (t: string, payload: Buffer) => client.publishAsync(t, payload, { qos: 1 });
  await send(topic(victim), m0!);
  await send(topic(victim), Buffer.from([0xff, 0x00, 0x13, 0x37]));            // random bytes
  await send(topic(victim), m1!.subarray(0, m1!.length >> 1));                  // truncated COSE
  await send(topic(victim), badSignature);                                      // signature does not verify
  await send(topic(victim), o0!);                                               // another device's message on this topic
  await send(topic(stranger), s0!);                                             // a device not on the allow-list
  await send('iop/v1/NOT-AN-ID/data', m0!);                                     // topic outside the map
  await send(topic(victim), Buffer.alloc(100_000, 1));                          // oversized
  await send(topic(victim), m0!);                                               // replay of an old message
  await send(topic(victim), m1!);                                               // and genuine traffic goes on
  await send(topic(victim), m2!);
  await until('the genuine readings at the subscriber', () => readings(subscriber).filter((r) => r.device === victim).length >= 3, 10_000);
  await sleep(500);
  await client.endAsync();

  const gw = await gateway.stop();
  assert.is(gw.code, 0, gw.stderr);
  const stats = JSON.parse(gw.stdout.toString());
  assert.is(stats.accepted, 3);
  assert.is(stats.duplicate, 1);
  assert.equal(stats.rejected, {
    'malformed': 3, 'too-large': 1, 'bad-signature': 1, 'unknown-device': 1, 'topic-mismatch': 1, 'broken-chain': 0, 'conflict': 0,
  });
  const sub = await subscriber.stop('SIGINT');
  assert.is(sub.code, 0, sub.stderr);
  const seen = readings(subscriber).filter((r) => r.device === victim);
  assert.equal(seen.map((r) => [r.seq, r.chain]), [[0, 'start'], [1, 'ok'], [2, 'ok']]);
  const summary = JSON.parse(/summary (\{.*\})/.exec(sub.stderr)![1]!);
  assert.is(summary.duplicates, 1);
  assert.equal(summary.rejected, { 'malformed': 3, 'bad-signature': 1, 'topic-mismatch': 2 });
});

test('readings queued for a persistent gateway session while it was away are all published on verified', async () => {
  // Enough that the queue outlasts the subscription's confirmation: before, 400 of 3,000 came.
  // The broker hands the queued readings over before it confirms the subscription (all of
  // them first: this broker has no in-flight limit); they are verified readings too.
  const gwDir = join(dir.path, 'gw-session');
  const boxDir = join(dir.path, 'queued-box');
  const device = await deviceId(boxDir);
  const args = ['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow', device, '--session', 'gw-session-test'];
  const first = launch(args);
  await until('the gateway subscribed', () => /connected/.test(first.stderr()), 10_000);
  assert.is((await first.stop()).code, 0);

  const file = join(dir.path, 'queued.cbor');
  assert.is((await runCli(['sample', '--count', '3000', '--out', file, '--state-dir', boxDir])).code, 0);
  const client = await mqtt.connectAsync(broker.url);
  for (const item of splitCborSequence(readFileSync(file))) await client.publishAsync(`iop/v1/${device}/data`, Buffer.from(item.bytes), { qos: 1 });
  const verified = new Set<number>();
  client.on('message', (_topic, payload) => verified.add(JSON.parse(payload.toString()).seq));
  await client.subscribeAsync(`iop/v1/${device}/verified`, { qos: 1 });

  const gateway = launch(args);
  await until('every reading on verified', () => verified.size === 3000, 20_000).catch((err: Error) => {
    throw new Error(`${err.message}: ${verified.size} of 3000 seen`);
  });
  await client.endAsync();
  const stats = JSON.parse((await gateway.stop()).stdout.toString());
  assert.is(stats.accepted, 3000);
});

test.run();
