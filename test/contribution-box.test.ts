// A box's side of contribution on the simulated radio, in virtual time: beacons go on the
// air once a period (and not beyond the duty-cycle budget), the neighbour witnesses them,
// a box without uplink sends both through the mesh to its uplink box, which publishes them
// on the signer's topics; forged reports are refused; relayed readings are attested.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { SimMedium, type SimLink } from '../drivers/sim/medium.ts';
import { SeededRandom } from '../drivers/sim/random.ts';
import { MeshNode, type MeshMessage } from '../mesh/node.ts';
import { messageHash } from '../agent/codec/chain.ts';
import { BeaconLink } from '../agent/contribution/beacon-link.ts';
import { BoxContribution } from '../agent/contribution/box-contribution.ts';
import { beaconFrame, openContribution, relayHash } from '../agent/contribution/messages.ts';
import { silentLogger } from '../agent/log.ts';
import { meshNodeId } from '../agent/mesh/setup.ts';
import { makeBeacon, testBox, type TestBox } from './helpers/contribution.ts';

const START_S = 1_795_000_000;

function world(dutyCycle = true) {
  const clock = new VirtualClock();
  const random = new SeededRandom(5);
  const medium = new SimMedium({ clock, random, rangeM: 1000, dutyCycle });
  const radios = [medium.add(0, 0), medium.add(500, 0)].map((l) => new BeaconLink(l));
  medium.connect();
  return { clock, random, radios };
}

function boxOn(w: ReturnType<typeof world>, i: number, who: TestBox, published: { topic: string; bytes: Uint8Array }[] | undefined) {
  const node = new MeshNode({ id: meshNodeId(who.identity.publicKey), key: new Uint8Array(32).fill(1), epoch: 1, clock: w.clock, links: [w.radios[i]!], random: () => w.random.next() });
  const client = published && {
    subscribe: () => {}, unsubscribe: () => {},
    publish: (topic: string, payload: Buffer, _o: unknown, done: (e?: Error) => void) => {
      published.push({ topic, bytes: new Uint8Array(payload) });
      done();
    },
  };
  const part = new BoxContribution({
    identity: who.identity, signSync: who.signBytes, node, radios: [{ link: w.radios[i]!, region: 'EU868', frequencyHz: 869_525_000, eirpDbm: 17 }],
    client: () => client, clock: w.clock, random: () => w.random.next(), nowS: () => START_S + w.clock.now() / 1000, periodS: 600, log: silentLogger,
  });
  if (published) {
    node.announce('uplink');
    node.onMessage((m: MeshMessage) => m.type === 'report' && part.onReport(m));
  }
  node.start();
  return { node, part };
}

test('beacons and witnesses of a box without uplink reach the broker through its uplink box, on the signer\'s topics', () => {
  const w = world();
  const a = testBox('box-a');
  const b = testBox('box-b');
  const published: { topic: string; bytes: Uint8Array }[] = [];
  const up = boxOn(w, 0, a, published);
  const mesh = boxOn(w, 1, b, undefined);
  w.clock.runUntil(30_000);
  up.part.start();
  mesh.part.start();
  w.clock.runUntil(30_000 + 3 * 600_000);
  // Readings relayed for b are attested, with their hashes, within the hour and when the box stops.
  const reading = new TextEncoder().encode('a reading of b');
  up.part.relayed(b.identity.id, 7, reading);
  up.part.stop();
  mesh.part.stop();
  w.clock.runUntil(w.clock.now() + 60_000);
  const kinds = (who: TestBox, kind: string) => published.filter((p) => p.topic === `iop/v1/${who.identity.id}/${kind}`);
  const sent = (part: BoxContribution) => (part.status() as { beacons: { beacons: number } }).beacons.beacons;
  assert.ok(sent(up.part) >= 3 && sent(up.part) <= 4, 'one beacon a period (the fourth may have begun)');
  assert.is(kinds(a, 'beacon').length, sent(up.part));
  assert.is(kinds(b, 'beacon').length, sent(mesh.part), 'through the mesh');
  assert.is(kinds(b, 'witness').length, sent(up.part), 'b heard each of a\'s beacons');
  assert.is(kinds(a, 'witness').length, sent(mesh.part));
  const witness = openContribution(kinds(b, 'witness')[0]!.bytes);
  assert.ok(witness.valid);
  assert.is(witness.signer.id, b.identity.id);
  assert.ok(witness.message.kind === 'witness' && witness.message.body.rssi < -40 && witness.message.body.link === 'sim');
  assert.is(mesh.part.counters.throughMesh, 2 * sent(mesh.part));
  assert.ok(w.radios[1]!.beaconAirtimeMs > 0);

  // A report signed by a key that is not the mesh origin's is refused.
  const forged = makeBeacon(testBox('stranger'), START_S + 100);
  up.part.onReport({ type: 'report', origin: meshNodeId(b.identity.publicKey), originHex: mesh.node.idHex, payload: forged.bytes, compressed: false });
  assert.is(up.part.counters.rejectedReports, 1);

  const [attestation] = kinds(a, 'relay');
  const opened = openContribution(attestation!.bytes);
  assert.ok(opened.message.kind === 'relay');
  assert.equal([opened.message.body.firstSeq, opened.message.body.hashes], [7, [relayHash(messageHash(reading))]]);
});

test('the airtime budget wins: a radio with no budget left sends no beacon that period', () => {
  const w = world();
  const link = w.radios[0]!;
  const frame = beaconFrame(makeBeacon(testBox('x'), START_S).bytes);
  // The mesh spent nearly all of the rolling hour's budget (10 % on 869.525 MHz).
  (link.inner as SimLink).duty!.record(link.budgetMs() - link.airtimeMs(frame.length) * 5);
  assert.not.ok(link.sendBeacon(frame), 'no room for the beacon and ten more like it');
  assert.is(link.beaconAirtimeMs, 0);
  const fresh = world();
  assert.ok(fresh.radios[0]!.sendBeacon(frame));
});

test.run();
