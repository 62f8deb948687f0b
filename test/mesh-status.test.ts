// The status of a box without an uplink of its own: signed by the box, checked and
// published by its uplink box, replays dropped, and the mesh's last will when it falls silent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventEmitter } from 'node:events';
import { generateKeyPairSync, sign } from 'node:crypto';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { SimMedium } from '../drivers/sim/medium.ts';
import { SeededRandom } from '../drivers/sim/random.ts';
import { MeshNode } from '../mesh/node.ts';
import { signedTraffic } from '../agent/mesh/sim-traffic.ts';
import { ED25519, identityFromPublicKey } from '../agent/codec/identity.ts';
import { signStatus, verifyStatus } from '../agent/codec/status.ts';
import { silentLogger } from '../agent/log.ts';
import { RelayedStatus } from '../agent/mesh/relayed-status.ts';
import { meshNodeId } from '../agent/mesh/setup.ts';
import type { MqttSession } from '../agent/uplink/session.ts';
import { nodeIdHex } from '../mesh/packet.ts';
import type { MeshMessage } from '../mesh/node.ts';

function device() {
  const pair = generateKeyPairSync('ed25519');
  const identity = identityFromPublicKey(ED25519, new Uint8Array(Buffer.from(pair.publicKey.export({ format: 'jwk' }).x!, 'base64url')));
  return { identity, sign: (tbs: Uint8Array) => new Uint8Array(sign(null, tbs, pair.privateKey)) };
}

const box = device();
const statusOf = (time: number, epoch = 1) => ({ online: true, id: box.identity.id, time, uplink: 'mesh', statusEveryS: 10, epoch });

test('a signed status verifies; any changed byte or a status naming another box does not', async () => {
  const bytes = await signStatus(box.identity, box.sign, statusOf(1000));
  const ok = verifyStatus(bytes);
  assert.ok(ok.valid);
  assert.is(ok.device, box.identity.id);
  assert.equal(ok.status, statusOf(1000));
  const tampered = bytes.slice();
  const at = Buffer.from(tampered).indexOf('1000');
  tampered[at] = '2'.charCodeAt(0);
  assert.is(verifyStatus(tampered).valid, false);
  const other = device();
  const lying = await signStatus(other.identity, other.sign, statusOf(1000));
  assert.throws(() => verifyStatus(lying), /names device .* but is signed by/);
});

/** A connected MQTT session that records what is published and echoes it back, as the broker does. */
function fakeSession() {
  const session = new EventEmitter() as EventEmitter & { current: unknown };
  const published: { topic: string; payload: string }[] = [];
  session.current = {
    subscribe: () => {},
    unsubscribe: () => {},
    publish: (topic: string, payload: string) => {
      published.push({ topic, payload });
      setImmediate(() => session.emit('message', topic, Buffer.from(payload)));
    },
  };
  return { session: session as unknown as MqttSession, published, emit: (topic: string, payload: string) => session.emit('message', topic, Buffer.from(payload)) };
}

const message = (payload: Uint8Array, origin = box.identity.publicKey): MeshMessage => {
  const id = meshNodeId(origin);
  return { type: 'status', origin: id, originHex: nodeIdHex(id), payload, compressed: false };
};
const tick = () => new Promise((resolve) => setImmediate(resolve));

test('the uplink box publishes a signed status once, drops replays and other origins, and marks a silent box offline only while its status is current', async () => {
  const clock = new VirtualClock();
  const { session, published, emit } = fakeSession();
  const relay = new RelayedStatus({ session, relayId: 'relay', clock, log: silentLogger });
  const first = await signStatus(box.identity, box.sign, statusOf(1000));
  relay.onStatus(message(first));
  await tick();
  assert.is(published.length, 1);
  const out = JSON.parse(published[0]!.payload);
  assert.is(published[0]!.topic, `iop/v1/${box.identity.id}/status`);
  assert.is(out.publishedBy, 'relay');
  assert.is(out.uplink, 'mesh');
  assert.ok(verifyStatus(new Uint8Array(Buffer.from(out.signed, 'base64url'))).valid);

  relay.onStatus(message(first)); // a replay
  relay.onStatus(message(await signStatus(box.identity, box.sign, statusOf(999)))); // an older one
  relay.onStatus(message(first, device().identity.publicKey)); // from a node that did not sign it
  assert.is(published.length, 1);
  assert.equal(relay.counters, { published: 1, rejected: 1, stale: 2, silent: 0 });
  // Restarted with its clock gone back: the higher epoch makes it the newer status.
  relay.onStatus(message(await signStatus(box.identity, box.sign, statusOf(500, 2))));
  await tick();
  assert.is(published.length, 2);
  published.shift();

  // Silent for 3 of its 10 s intervals: offline, in the uplink box's name.
  clock.runUntil(29_000);
  assert.is(published.length, 1);
  clock.runUntil(31_000);
  assert.is(published.length, 2);
  const will = JSON.parse(published[1]!.payload);
  assert.equal([will.online, will.id, will.publishedBy, will.signed], [false, box.identity.id, 'relay', undefined]);

  // Back online, then someone else (the box itself, direct) publishes: no offline from here.
  relay.onStatus(message(await signStatus(box.identity, box.sign, statusOf(2000, 2))));
  await tick();
  emit(`iop/v1/${box.identity.id}/status`, JSON.stringify({ online: true, id: box.identity.id, uplink: 'direct' }));
  clock.runUntil(clock.now() + 60_000);
  assert.is(published.length, 3, 'nothing published over the newer status');
  assert.is(relay.counters.silent, 1);
  relay.stop();
});

test('a status crosses the mesh plain and is no compression reference: the readings around it still compress', async () => {
  const clock = new VirtualClock();
  const random = new SeededRandom(9);
  const medium = new SimMedium({ clock, random, rangeM: 1000 });
  const links = [medium.add(0, 0), medium.add(400, 0)];
  medium.connect();
  const key = new Uint8Array(32).fill(3);
  const [uplink, origin] = [0, 1].map((i) => new MeshNode({ id: new Uint8Array([4, 4, 4, 4, 4, i]), key, epoch: 1, clock, links: [links[i]!], random: () => random.next() }));
  uplink!.announce('uplink');
  const got: MeshMessage[] = [];
  uplink!.onMessage((m) => got.push(m));
  uplink!.start();
  origin!.start();
  clock.runUntil(20_000);
  const traffic = signedTraffic(4, 300);
  const confirm = () => {
    // A message back (a receipt) confirms the newest message the uplink box holds from the origin.
    uplink!.send(origin!.id, 'receipt', traffic.receipt(1, 0));
    clock.runUntil(clock.now() + 5000);
  };
  origin!.sendToUplink(traffic.reading(1, 0));
  clock.runUntil(clock.now() + 5000);
  confirm();
  const status = await signStatus(box.identity, box.sign, { ...statusOf(1000), sensors: [{ name: 'temperature', kind: 'simulated', ok: true }] });
  origin!.sendToUplink(status, undefined, 'status');
  clock.runUntil(clock.now() + 5000);
  confirm();
  origin!.sendToUplink(traffic.reading(1, 1));
  clock.runUntil(clock.now() + 5000);
  assert.equal(got.map((m) => [m.type, m.compressed]), [['reading', false], ['status', false], ['reading', true]]);
  assert.equal(got[1]!.payload, status, 'the status arrives byte for byte');
  uplink!.stop();
  origin!.stop();
});

test.run();
