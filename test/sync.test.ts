// The uplink against a real Mosquitto: store-and-forward through outages and broker
// restarts, gateway receipts, broker-ack mode, refused credentials.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers/cli.ts';
import { startMosquitto } from './helpers/mosquitto.ts';
import { testDeployment, boxConfig, gatewayKey, queued, readings, sleep, start, until } from './helpers/system.ts';
import { deviceId } from './helpers/system.ts';

const { dir, broker, running, launch } = testDeployment(test);


function assertContiguous(seen: { seq: number; valid: boolean; chain: string }[], from: number, to: number) {
  const seqs = seen.map((r) => r.seq);
  const broken = seqs.findIndex((seq, i) => seq !== from + i);
  assert.is(broken, -1, `every seq once, in order: at index ${broken}: ${seqs.slice(Math.max(0, broken - 3), broken + 3).join(',')}`);
  assert.is(seqs.length, to - from + 1);
  for (const r of seen) {
    assert.ok(r.valid);
    assert.ok(r.chain === 'ok' || (r.seq === from && r.chain === 'start'), `seq ${r.seq}: chain ${r.chain}`);
  }
}

test('readings reach the gateway and a subscriber; receipts empty the box\'s queue', async () => {
  const gwDir = join(dir.path, 'gw1');
  const key = await gatewayKey(gwDir);
  const gateway = launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any']);
  const subscriber = launch(['subscribe', '--broker', broker.url, '--json']);
  await until('gateway and subscriber connected', () => /connected/.test(gateway.stderr()) && /connected/.test(subscriber.stderr()), 10_000);
  const config = boxConfig(dir.path, 'box1', { gatewayKeys: [key] });
  const box = launch(['run', '--config', config, '--broker', broker.url]);
  await until('40 readings at the subscriber', () => readings(subscriber).length >= 40, 30_000);
  await until('box queue drained by receipts', async () => (await queued(join(dir.path, 'box1'))) <= 15, 30_000, 300);
  const stopped = await box.stop();
  assert.is(stopped.code, 0, stopped.stderr);
  const seen = readings(subscriber);
  assertContiguous(seen, 0, seen.length - 1);
  const stats = JSON.parse((await gateway.stop()).stdout.toString());
  assert.ok(stats.accepted >= 40);
  assert.is(Object.values(stats.rejected as Record<string, number>).reduce((a, b) => a + b, 0), 0);
  await subscriber.stop('SIGINT');
});

test('broker down for 30 s: everything sampled meanwhile arrives, in order', async () => {
  const gwDir = join(dir.path, 'gw2');
  const key = await gatewayKey(gwDir);
  // A broker as deployed keeps its state on disk; the subscriber keeps a persistent session.
  const durable = await startMosquitto({ persistence: true });
  try {
    const url = durable.url;
    const gateway = launch(['gateway', '--broker', url, '--state-dir', gwDir, '--allow-any', '--session', 'gw-outage-test']);
    const boxId = await deviceId(join(dir.path, 'box2'));
    const subscriber = launch(['subscribe', '--broker', url, '--json', '--device', boxId, '--session', 'outage-test']);
    await until('connected', () => /connected/.test(gateway.stderr()) && /connected/.test(subscriber.stderr()), 10_000);
    const box = launch(['run', '--config', boxConfig(dir.path, 'box2', { gatewayKeys: [key] }), '--broker', url]);
    await until('first readings', () => readings(subscriber).length >= 10, 20_000);
    await durable.stop();
    const before = readings(subscriber).length;
    await sleep(30_000);
    await durable.start();
    // 30 s at 10 Hz: about 300 readings were made while the broker was away
    await until('the outage\'s readings', () => readings(subscriber).length >= before + 290, 60_000, 250);
    // Receipts catch up: the queue shrinks to the last moments' readings while the box runs on.
    await until('box queue drained', async () => (await queued(join(dir.path, 'box2'))) <= 15, 30_000, 300);
    await box.stop();
    const seen = readings(subscriber);
    assertContiguous(seen, 0, seen.length - 1);
    assert.ok(/disconnected/.test(box.stderr()) && /connected to/.test(box.stderr()));
    await gateway.stop();
    await subscriber.stop('SIGINT');
  } finally {
    await durable.stop();
  }
});

test('broker restarted without persistence while readings are in flight: nothing lost, thanks to receipts', async () => {
  const gwDir = join(dir.path, 'gw3');
  const key = await gatewayKey(gwDir);
  const gateway = launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any']);
  await until('gateway connected', () => /connected/.test(gateway.stderr()), 10_000);
  const boxDir = join(dir.path, 'box3');
  // A backlog first, so that many readings are in flight when the broker dies.
  const sample = await (await import('./helpers/cli.ts')).runCli(['sample', '--count', '400', '--out', join(dir.path, 'backlog.cbor'), '--state-dir', boxDir]);
  assert.is(sample.code, 0, sample.stderr);
  const box = launch(['run', '--config', boxConfig(dir.path, 'box3', { gatewayKeys: [key] }, { sampling: { intervalMs: 20 } }), '--broker', broker.url]);
  await until('box connected', () => /connected to/.test(box.stderr()), 10_000);
  await sleep(150);
  await broker.kill(); // SIGKILL: whatever the broker held is gone
  await broker.start();
  await sleep(4000);
  const boxResult = await box.stop();
  const gwResult = await gateway.stop();
  assert.match(boxResult.stderr, /disconnected[\s\S]*connected to/);
  const stats = JSON.parse(gwResult.stdout.toString());
  // Nothing is lost: the gateway holds an unbroken run from seq 0, and every reading the
  // box made is at the gateway or still queued on the box for the next connection.
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(join(gwDir, 'gateway.db'));
  const rows = (db.prepare('SELECT seq FROM readings ORDER BY seq').all() as { seq: number }[]).map((r) => r.seq);
  const frontier = (db.prepare('SELECT seq FROM frontier').get() as { seq: number }).seq;
  db.close();
  assert.ok(frontier > 400, `frontier ${frontier}: the backlog and what came after the restart`);
  assert.equal(rows.slice(0, frontier + 1), Array.from({ length: frontier + 1 }, (_, i) => i));
  const boxDb = new DatabaseSync(join(boxDir, 'store.db'));
  const head = (boxDb.prepare('SELECT seq FROM chain_head').get() as { seq: number }).seq;
  const waiting = (boxDb.prepare('SELECT seq FROM messages').all() as { seq: number }[]).map((r) => r.seq);
  boxDb.close();
  const everywhere = new Set([...rows, ...waiting]);
  const lost = Array.from({ length: head + 1 }, (_, i) => i).filter((seq) => !everywhere.has(seq));
  assert.equal(lost, [], 'readings neither at the gateway nor on the box');
  const kept = new Set(waiting);
  const deleted = Array.from({ length: head + 1 }, (_, i) => i).filter((seq) => !kept.has(seq));
  assert.ok(deleted.every((seq) => seq <= frontier), 'the box deleted only what a receipt covered');
  assert.is(stats.accepted, rows.length);
});

test('broker-ack mode: PUBACK empties the queue without a gateway', async () => {
  const boxDir = join(dir.path, 'box4');
  const box = launch(['run', '--config', boxConfig(dir.path, 'box4', { ack: 'broker' }), '--broker', broker.url]);
  await until('readings forwarded', () => /connected to/.test(box.stderr()), 10_000);
  await sleep(1500);
  await box.stop();
  const { runCli } = await import('./helpers/cli.ts');
  const head = JSON.parse((await runCli(['id', '--json', '--state-dir', boxDir])).stdout.toString());
  assert.ok(head.id);
  assert.ok((await queued(boxDir)) <= 1);
});

test('ws:// works like mqtt://', async () => {
  const { freePort } = await import('./helpers/mosquitto.ts');
  const wsPort = await freePort();
  const ws = await startMosquitto({ extra: [`listener ${wsPort} 127.0.0.1`, 'protocol websockets'] });
  try {
    const box = launch(['run', '--config', boxConfig(dir.path, 'box-ws', { ack: 'broker' }), '--broker', `ws://127.0.0.1:${wsPort}`]);
    await until('connected over WebSocket', () => /connected to ws:/.test(box.stderr()), 10_000);
    await sleep(800);
    assert.is((await box.stop()).code, 0);
    assert.ok((await queued(join(dir.path, 'box-ws'))) <= 1);
  } finally {
    await ws.stop();
  }
});

test('a broker refusing the credentials: a clear error, said once, and backing off instead of a hot loop', async () => {
  const passwords = join(dir.path, 'passwd');
  writeFileSync(passwords, '');
  execFileSync('mosquitto_passwd', ['-b', passwords, 'alice', 'right-password']);
  const locked = await startMosquitto({ extra: ['allow_anonymous false', `password_file ${passwords}`], logFile: join(dir.path, 'locked.log') });
  try {
    const secret = join(dir.path, 'secret');
    writeFileSync(secret, 'wrong-password\n');
    const box = launch(['run', '--config', boxConfig(dir.path, 'box5', { username: 'alice', passwordFile: secret, reconnectMinMs: 200, reconnectMaxMs: 60_000 }), '--broker', locked.url]);
    await sleep(5000);
    const result = await box.stop();
    assert.is(result.code, 0, 'the agent kept running');
    const errors = result.stderr.split('\n').filter((l) => /refused the connection/.test(l));
    assert.is(errors.length, 1, result.stderr);
    assert.match(errors[0]!, /Bad User Name or Password|Not authorized/i);
    assert.match(errors[0]!, /check uplink\.username and uplink\.passwordFile/);
    assert.not.match(result.stderr, /wrong-password/, 'the password is never logged');
    const attempts = locked.log().split('\n').filter((l) => /New connection from/.test(l)).length;
    assert.ok(attempts >= 3 && attempts <= 8, `${attempts} connection attempts in 5 s`);
  } finally {
    await locked.stop();
  }
});

test.run();
