// Readings the gateway lacks stay on the box: against a real Mosquitto and a real gateway
// process, a reading withheld on its way is passed over by the chain after the gap
// timeout, is kept by the box while receipts free the readings around it, and when it
// comes late it is stored, published as `late` and receipted. Readings the box dropped
// itself (queue bound) show as a gap, as before.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import mqtt, { type MqttClient } from 'mqtt';
import { loadConfig } from '../agent/config/load.ts';
import { openBox, type Box } from '../agent/box.ts';
import { silentLogger } from '../agent/log.ts';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import { verifyReceipt } from '../agent/codec/receipt.ts';
import { createForwarder } from '../agent/uplink/uplink.ts';
import type { Forwarder, Publisher } from '../agent/uplink/forwarder.ts';
import { deviceTopic } from '../agent/uplink/topics.ts';
import { testDeployment, gatewayKey, until, type Running } from './helpers/system.ts';

const { dir, broker, launch } = testDeployment(test);
const GAP_TIMEOUT_MS = 600;

interface Verified { seq: number; chain: string }

/** A box in this process: its journal, its forwarder, and the receipts it was given. */
async function openTestBox(name: string, gatewayKeyHex: string, maxMessages?: number) {
  const file = join(dir.path, `${name}.json`);
  writeFileSync(file, JSON.stringify({ uplink: { gatewayKeys: [gatewayKeyHex], ackTimeoutMs: 5000 }, ...(maxMessages ? { store: { maxMessages } } : {}) }));
  const { config } = loadConfig({ path: file, overrides: { stateDir: join(dir.path, name) } });
  const box = await openBox(config, silentLogger);
  const forwarder = createForwarder(config.uplink, config.stateDir, box, silentLogger);
  return { box, forwarder };
}

async function append(box: Box, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await box.journal.append(encodeSenmlPack({ time: 1_800_000_000 + i, records: [{ n: 'temperature', u: 'Cel', v: 20 + i / 10 }] }));
  }
}

/** Publishes through a real client, but swallows the first publish of the seqs in `withhold` (lost on the way). */
function lossyPublisher(client: MqttClient, box: Box, withhold: Set<number>): Publisher {
  const firstSeq = new Map<string, number>();
  for (const m of box.journal.messages()) firstSeq.set(Buffer.from(m.bytes).toString('base64'), m.seq);
  return {
    publish(topic, payload, options, callback) {
      const seq = firstSeq.get(payload.toString('base64'));
      if (seq !== undefined && withhold.delete(seq)) {
        setImmediate(() => callback());
        return;
      }
      return client.publish(topic, payload, options, callback);
    },
  };
}

/** The test's own MQTT client: it carries the box's readings, hands it its receipts and watches `verified`. */
async function wire(box: Box, forwarder: Forwarder, onReceipt: (bytes: Uint8Array) => void) {
  const client = await mqtt.connectAsync(broker.url);
  const verified: Verified[] = [];
  client.on('message', (topic, payload) => {
    if (topic.endsWith('/verified')) verified.push(JSON.parse(payload.toString()));
    else {
      forwarder.onReceipt(new Uint8Array(payload));
      onReceipt(new Uint8Array(payload));
    }
  });
  await client.subscribeAsync([deviceTopic(box.identity.id, 'ack'), deviceTopic(box.identity.id, 'verified')], { qos: 1 });
  return { client, verified };
}

function held(box: Box): number[] {
  return [...box.journal.messages()].map((m) => m.seq);
}

async function gateway(name: string): Promise<{ process: Running; dir: string }> {
  const gwDir = join(dir.path, name);
  const process = launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any', '--gap-timeout', String(GAP_TIMEOUT_MS)]);
  await until('gateway connected', () => /connected/.test(process.stderr()), 10_000);
  return { process, dir: gwDir };
}

test('a reading lost on its way: kept by the box past the gap timeout, then stored, published as late and receipted', async () => {
  const gwDir = join(dir.path, 'gw-late');
  const { box, forwarder } = await openTestBox('late-box', await gatewayKey(gwDir));
  const gw = await gateway('gw-late');
  await append(box, 10);
  let deletedEarly = false;
  const wiring = await wire(box, forwarder, (bytes) => {
    // The box may let seq 3 go only under a receipt that covers it.
    const covers3 = verifyReceipt(bytes).ranges.some((r) => r.first <= 3 && 3 <= r.last);
    if (!box.journal.get(3) && !covers3) deletedEarly = true;
  });
  try {
    forwarder.attach(lossyPublisher(wiring.client, box, new Set([3])));
    await until('the chain passes over seq 3', () => wiring.verified.some((v) => v.seq === 4), 10_000, 20);
    assert.equal(wiring.verified.find((v) => v.seq === 4)?.chain, 'gap');
    // Receipts freed everything the gateway holds; seq 3 stays until it is sent again.
    await until('the box holds only seq 3', () => held(box).join() === '3', 5000, 20);
    await until('seq 3 published late', () => wiring.verified.some((v) => v.seq === 3), 15_000, 50);
    assert.equal(wiring.verified.find((v) => v.seq === 3)?.chain, 'late');
    await until('the box queue empty', () => held(box).length === 0, 5000, 20);
    assert.not.ok(deletedEarly, 'seq 3 left the box before a receipt covered it');
    assert.is(box.journal.stats().acked, 9);

    forwarder.stop();
    const stats = JSON.parse((await gw.process.stop()).stdout.toString());
    assert.is(stats.accepted, 10);
    assert.is(stats.late, 1);
    assert.is(stats.missing, 1);
    assert.is(stats.rejected.conflict, 0);
    const db = new DatabaseSync(join(gw.dir, 'gateway.db'));
    const seqs = (db.prepare('SELECT seq FROM readings ORDER BY seq').all() as { seq: number }[]).map((r) => r.seq);
    const runs = db.prepare('SELECT first, last FROM runs').all() as { first: number; last: number }[];
    db.close();
    assert.equal(seqs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(runs.map((r) => [r.first, r.last]), [[0, 9]]);
  } finally {
    forwarder.stop();
    await wiring.client.endAsync();
    box.journal.close();
  }
});

test('readings the box dropped from its full queue: the gateway shows the gap and the box frees the rest', async () => {
  const gwDir = join(dir.path, 'gw-bound');
  const { box, forwarder } = await openTestBox('bound-box', await gatewayKey(gwDir), 100);
  const gw = await gateway('gw-bound');
  const wiring = await wire(box, forwarder, () => {});
  try {
    await append(box, 3);
    forwarder.attach(wiring.client);
    await until('the first three receipted', () => held(box).length === 0, 10_000, 20);
    forwarder.detach();
    await append(box, 104); // seq 3..106 while offline, a hundred kept: 3..6 are dropped
    assert.equal(held(box)[0], 7);
    assert.is(box.journal.stats().dropped, 4);
    forwarder.attach(wiring.client);
    await until('seq 106 published', () => wiring.verified.some((v) => v.seq === 106), 10_000, 20);
    const expected = [[0, 'start'], [1, 'ok'], [2, 'ok'], [7, 'gap'], ...Array.from({ length: 99 }, (_, i) => [8 + i, 'ok'])];
    assert.equal(wiring.verified.map((v) => [v.seq, v.chain]), expected);
    await until('the box queue empty', () => held(box).length === 0, 5000, 20);
    forwarder.stop();
    const stats = JSON.parse((await gw.process.stop()).stdout.toString());
    assert.is(stats.missing, 4);
    assert.is(stats.late, 0);
  } finally {
    forwarder.stop();
    await wiring.client.endAsync();
    box.journal.close();
  }
});

test.run();
