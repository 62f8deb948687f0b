// What a box tells the world about itself on its retained status topic, and which
// receipts it believes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { runCli } from './helpers/cli.ts';
import { testDeployment, boxConfig, gatewayKey, queuedSeqs, sleep, until } from './helpers/system.ts';
import { deviceId } from './helpers/system.ts';

const { dir, broker, running, launch } = testDeployment(test);


test('retained birth message; offline on a clean stop; the last will marks a killed box offline; dropped readings are reported', async () => {
  const boxDir = join(dir.path, 'box');
  const id = await deviceId(boxDir);
  // a queue bound of 100 and a backlog of 150: 50 are dropped before the box connects
  assert.is((await runCli(['sample', '--count', '150', '--out', '/dev/null', '--config', boxConfig(dir.path, 'box', {}, { store: { maxMessages: 100 } })])).code, 0);
  const statuses: Record<string, unknown>[] = [];
  const watcher = await mqtt.connectAsync(broker.url);
  try {
    watcher.on('message', (_topic, payload) => statuses.push(JSON.parse(payload.toString())));
    await watcher.subscribeAsync(`iop/v1/${id}/status`, { qos: 1 });

    const config = boxConfig(dir.path, 'box', { ack: 'broker', keepaliveS: 5 }, { store: { maxMessages: 100 } });
    const box = launch(['run', '--config', config, '--broker', broker.url]);
    await until('birth message', () => statuses.some((s) => s.online === true), 10_000);
    const birth = statuses.find((s) => s.online === true)!;
    const idResult = JSON.parse((await runCli(['id', '--json', '--state-dir', boxDir])).stdout.toString());
    assert.is(birth.id, id);
    assert.is(birth.publicKey, idResult.publicKey);
    assert.equal((birth.sensors as { name: string }[]).map((s) => s.name), ['temperature', 'humidity', 'pressure', 'pulse']);
    assert.equal(birth.capabilities, ['senml+cbor', 'cose-sign1', 'hash-chain', 'receipts']);
    assert.is(birth.uplink, 'direct');
    assert.is(birth.ack, 'broker');
    // 50 dropped by the backlog, plus one per reading the box signed before it said hello
    const queue = birth.queue as { dropped: number; head: number; stored: number };
    assert.ok(queue.dropped >= 50 && queue.dropped <= queue.head + 1 - 100, `dropped ${queue.dropped} of ${queue.head + 1}`);
    assert.is(typeof birth.version, 'string');

    assert.is((await box.stop()).code, 0);
    await until('offline after a clean stop', () => statuses.at(-1)?.online === false, 5_000);

    const killed = launch(['run', '--config', config, '--broker', broker.url]);
    await until('online again', () => statuses.at(-1)?.online === true, 10_000);
    await killed.stop('SIGKILL');
    // the broker publishes the will after 1.5 keepalive periods without a word from the box
    await until('the last will', () => statuses.at(-1)?.online === false, 15_000);
  } finally {
    await watcher.endAsync(true);
  }
  // and the retained status is what a newcomer sees
  const late = await mqtt.connectAsync(broker.url);
  const retained = new Promise<Record<string, unknown>>((resolve) => late.on('message', (_t, p) => resolve(JSON.parse(p.toString()))));
  await late.subscribeAsync(`iop/v1/${id}/status`);
  assert.is((await retained).online, false);
  await late.endAsync();
});

test('receipts from a gateway that is not trusted delete nothing', async () => {
  const gwDir = join(dir.path, 'rogue-gw');
  await gatewayKey(gwDir);
  const trusted = await gatewayKey(join(dir.path, 'real-gw')); // a gateway that is not running
  const gateway = launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any']);
  await until('gateway connected', () => /connected/.test(gateway.stderr()), 10_000);
  const box = launch(['run', '--config', boxConfig(dir.path, 'cautious', { gatewayKeys: [trusted] }), '--broker', broker.url]);
  await until('a rejected receipt', () => /receipt from gateway [0-9a-f]{64} which is not trusted/.test(box.stderr()), 10_000);
  await sleep(500);
  await box.stop();
  const stats = JSON.parse((await gateway.stop()).stdout.toString());
  assert.ok(stats.accepted > 3 && stats.receipts > 0, 'the rogue gateway did answer');
  const seqs = await queuedSeqs(join(dir.path, 'cautious'));
  assert.ok(seqs.length > 3);
  assert.equal(seqs, seqs.map((_, i) => i), 'every reading the box made is still queued');
});

test('an allow-list file with a bad line is a clear configuration error', async () => {
  const list = join(dir.path, 'allow.txt');
  const good = await deviceId(join(dir.path, 'listed'));
  writeFileSync(list, `# boxes of the pilot\n${good}\nnot-a-device-id\n`);
  const result = await runCli(['gateway', '--broker', broker.url, '--state-dir', join(dir.path, 'gw-list'), '--allow-file', list]);
  assert.is(result.code, 2);
  assert.match(result.stderr, /allow\.txt:3: device id 'not-a-device-id' is not valid/);
});

test.run();
