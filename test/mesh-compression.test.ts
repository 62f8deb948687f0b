// End-to-end compression of mesh messages: against a reference the peer confirmed, exact
// round trips, a peer that lost its references, and envelopes that cannot be valid.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { MessageCodec, MAX_MESSAGE_BYTES } from '../mesh/compression.ts';
import { MeshPacketError } from '../mesh/packet.ts';
import { signedTraffic } from '../agent/mesh/sim-traffic.ts';
import { SimMedium } from '../drivers/sim/medium.ts';
import { SeededRandom } from '../drivers/sim/random.ts';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { MeshNode, type MeshMessage } from '../mesh/node.ts';
import { LORA_TIMERS } from '../mesh/simulation.ts';

const traffic = signedTraffic(3, 300);
const origin = 'origin';
const uplink = 'uplink';

function decoded(codec: MessageCodec, peer: string, envelope: Uint8Array): Uint8Array {
  const out = codec.decode(peer, envelope);
  if (!('message' in out)) throw new Error(`missing reference ${out.missingReference}`);
  return out.message;
}

test('readings go plain until the uplink box confirms one, then deflate to one LoRa frame and come back exact', () => {
  const box = new MessageCodec();
  const gateway = new MessageCodec();
  const first = box.encode(uplink, traffic.reading(0, 0));
  assert.ok(first.length > traffic.reading(0, 0).length, 'nothing confirmed yet: plain');
  assert.equal(decoded(gateway, origin, first), traffic.reading(0, 0));
  // The uplink box's receipt names the reading it holds.
  assert.equal(decoded(box, uplink, gateway.encode(origin, traffic.receipt(0, 0))), traffic.receipt(0, 0));
  for (let n = 1; n <= 6; n++) {
    const bytes = traffic.reading(0, n);
    const envelope = box.encode(uplink, bytes);
    // against the confirmed reading (the receipt that confirms the newest comes later)
    assert.ok(envelope.length <= 160, `reading ${n}: ${envelope.length} bytes for ${bytes.length}`);
    assert.equal(decoded(gateway, origin, envelope), bytes);
  }
});

test('a peer that lost its references says which one it lacks; the message sent plain gets through', () => {
  const box = new MessageCodec();
  const gateway = new MessageCodec();
  decoded(gateway, origin, box.encode(uplink, traffic.reading(1, 0)));
  decoded(box, uplink, gateway.encode(origin, traffic.receipt(1, 0)));
  const restarted = new MessageCodec();
  const compressed = box.encode(uplink, traffic.reading(1, 1));
  const answer = restarted.decode(origin, compressed);
  assert.ok('missingReference' in answer);
  assert.equal(decoded(restarted, origin, box.encode(uplink, traffic.reading(1, 1), true)), traffic.reading(1, 1));
});

test('envelopes that cannot be valid are refused with a reason, and expansion is bounded', () => {
  const codec = new MessageCodec();
  const refused = (bytes: Uint8Array, pattern: RegExp) => {
    try {
      codec.decode(origin, bytes);
    } catch (err) {
      assert.instance(err, MeshPacketError);
      assert.match((err as Error).message, pattern);
      return;
    }
    assert.unreachable(`accepted ${Buffer.from(bytes).toString('hex')}`);
  };
  refused(new Uint8Array(), /empty/);
  refused(Uint8Array.of(0x40, 1, 2), /flags 0x40 are unknown/);
  refused(Uint8Array.of(0x82, 1), /flags/);
  refused(Uint8Array.of(0x80, 1, 2), /cut short/);
  refused(Uint8Array.of(0x01, 0, 0), /too short/);
  // A reference we hold, then garbage and a bomb against it.
  const reference = traffic.reading(2, 0);
  decoded(codec, origin, Uint8Array.of(0, ...reference));
  const referenceId = createHash('sha256').update(reference).digest().subarray(0, 4);
  refused(Uint8Array.of(0x01, ...referenceId, 0xff, 0xff, 0xff), /does not inflate/);
  const bomb = deflateRawSync(new Uint8Array(MAX_MESSAGE_BYTES * 4), { dictionary: Buffer.concat([reference, new Uint8Array(32)]) });
  refused(Uint8Array.of(0x01, ...referenceId, ...bomb), /does not inflate/);
});

test('over the radio: a restarted uplink box asks for the reading again and gets it uncompressed, once', () => {
  const clock = new VirtualClock();
  const random = new SeededRandom(5);
  const medium = new SimMedium({ clock, random, rangeM: 1000 });
  const links = [medium.add(0, 0), medium.add(700, 0), medium.add(1400, 0)];
  medium.connect();
  const key = new Uint8Array(32).fill(9);
  const make = (i: number, epoch: number) => new MeshNode({ id: new Uint8Array([9, 9, 9, 9, 9, i]), key, epoch, clock, links: [links[i]!], timers: LORA_TIMERS, random: () => random.next() });
  let gateway = make(0, 1);
  const nodes = [gateway, make(1, 1), make(2, 1)];
  const got: MeshMessage[] = [];
  const serve = (node: MeshNode) => {
    node.announce('uplink');
    node.onMessage((m) => {
      got.push(m);
      node.send(m.origin, 'receipt', traffic.receipt(4, got.length - 1));
    });
  };
  serve(gateway);
  nodes.forEach((n) => n.start());
  clock.runUntil(120_000);
  const box = nodes[2]!;
  assert.ok(box.sendToUplink(traffic.reading(4, 0)));
  clock.runUntil(clock.now() + 60_000);
  assert.ok(box.sendToUplink(traffic.reading(4, 1)));
  clock.runUntil(clock.now() + 60_000);
  assert.is(got.length, 2);
  assert.is(got[0]!.compressed, false);
  assert.is(got[1]!.compressed, true, 'the second reading came compressed against the first');
  // The uplink box restarts (same radio, a new epoch): its references are gone.
  gateway.stop();
  gateway = make(0, 2);
  serve(gateway);
  gateway.start();
  clock.runUntil(clock.now() + 300_000);
  assert.ok(box.sendToUplink(traffic.reading(4, 2)));
  clock.runUntil(clock.now() + 120_000);
  assert.is(got.length, 3, 'delivered once');
  assert.equal(got[2]!.payload, traffic.reading(4, 2));
  assert.is(got[2]!.compressed, false);
});

test.run();
