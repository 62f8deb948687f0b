// Forwarding on the simulated radio: fragments across hops, passive acknowledgements,
// the hop limit, rerouting around a relay that fades, and nothing delivered twice; a
// reading stays for the uplink its origin chose.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SeededRandom } from '../drivers/sim/random.ts';
import type { MeshMessage } from '../mesh/node.ts';
import { simBoxes } from './helpers/sim-line.ts';

/** Boxes at the given x positions (metres, range 1000), box 0 the uplink. */
const line = (xs: [number, number][], options: { hopLimit?: number } = {}) => simBoxes(xs, options);

/** Reading n: 290 bytes that do not compress against the others, so each goes in two fragments. */
const reading = (n: number, size = 290) => {
  const random = new SeededRandom(1000 + n);
  return Uint8Array.from({ length: size }, () => random.int(256));
};

test('a 290-byte reading crosses three hops in fragments and arrives whole, once; relays acknowledge by relaying', () => {
  const { clock, nodes, got } = line([[0, 0], [800, 0], [1600, 0], [2400, 0]]);
  clock.runUntil(120_000);
  const origin = nodes[3]!;
  const uplink = origin.bestUplink();
  assert.ok(uplink, 'box 3 has a route to the uplink');
  for (let n = 0; n < 5; n++) assert.ok(origin.send(uplink!.id, 'reading', reading(n)));
  clock.runUntil(clock.now() + 120_000);
  assert.is(got.length, 5);
  got.forEach((m, n) => assert.equal([...m.payload], [...reading(n)]));
  assert.ok(got.every((m) => m.originHex === origin.idHex));
  // Relays forward on the radio they heard on: their relaying is the ack; only the uplink sends acks.
  const relayAcks = nodes[1]!.counters.ackFrames + nodes[2]!.counters.ackFrames;
  assert.ok(relayAcks < nodes[0]!.counters.ackFrames, `relays sent ${relayAcks} acks, the uplink ${nodes[0]!.counters.ackFrames}`);
  assert.ok(nodes[1]!.counters.forwarded >= 10 && nodes[2]!.counters.forwarded >= 10, 'both relays carried every fragment');
});

test('the hop limit stops a packet: with 2 hops allowed, box 3 cannot reach the uplink 3 hops away', () => {
  const { clock, nodes, got } = line([[0, 0], [800, 0], [1600, 0], [2400, 0]], { hopLimit: 2 });
  clock.runUntil(120_000);
  nodes[3]!.send(nodes[3]!.bestUplink()!.id, 'reading', reading(1));
  clock.runUntil(clock.now() + 60_000);
  assert.is(got.length, 0);
  assert.ok(nodes[1]!.counters.dropped.hopLimit > 0);
});

test('a relay that fades is routed around when another path exists, and nothing arrives twice', () => {
  // two paths from box 3 to box 0: through box 1 (above) or box 2 (below)
  const { clock, medium, nodes, got } = line([[0, 0], [700, 500], [700, -500], [1400, 0]]);
  clock.runUntil(180_000);
  const origin = nodes[3]!;
  const via = origin.status().routes.find((r) => r.selected && r.uplink)!.via!;
  const viaIndex = nodes.findIndex((n) => n.idHex === via);
  assert.ok(viaIndex === 1 || viaIndex === 2, `routes through a relay (${viaIndex})`);
  medium.setUp(viaIndex, false);
  for (let n = 0; n < 6; n++) {
    clock.runUntil(clock.now() + 20_000);
    const uplink = origin.bestUplink();
    if (uplink) origin.send(uplink.id, 'reading', reading(n));
  }
  // Routes move once a seqno request is answered; on a radio the request or its answer
  // may be lost and asked again (every 32 s on LoRa timers): a few minutes at most.
  const selected = () => origin.status().routes.find((r) => r.selected && r.uplink);
  for (let waited = 0; waited < 360_000 && selected()?.via !== (viaIndex === 1 ? nodes[2] : nodes[1])!.idHex; waited += 10_000) clock.runUntil(clock.now() + 10_000);
  const now = selected();
  assert.ok(now && now.via !== via, 'box 3 routes through the other relay');
  // The readings sent just before the switch are still on their way (the data plane takes
  // the other relay for each after the faded one left its tries unanswered).
  clock.runUntil(clock.now() + 60_000);
  const keys = got.map((m) => m.payload[0]);
  assert.is(new Set(keys).size, keys.length, 'no reading delivered twice');
  assert.is(got.length, 6, `every reading sent after the fade arrived: ${got.length} of 6`);
});

test('a relay that loses the way to the uplink a reading names holds it rather than passing it to another uplink; the origin then chooses the other', () => {
  // uplink box 0, relay 1, origin 2 on a line; a second uplink, box 3, in range of the relay only
  const { clock, medium, nodes } = line([[0, 0], [800, 0], [1600, 0], [800, 920]]);
  const at = new Map<number, MeshMessage[]>([[0, []], [3, []]]);
  nodes[3]!.announce('uplink');
  for (const [i, got] of at) nodes[i]!.onMessage((m) => got.push(m));
  clock.runUntil(180_000);
  const origin = nodes[2]!;
  const chosen = nodes.findIndex((n) => n.idHex === origin.bestUplink()?.idHex);
  assert.ok(chosen === 0 || chosen === 3, `the origin chooses an uplink (${chosen})`);
  const other = chosen === 0 ? 3 : 0;
  medium.cut(chosen, 1);
  assert.ok(origin.sendToUplink(reading(1, 120)));
  clock.runUntil(clock.now() + 120_000);
  assert.equal([at.get(0)!.length, at.get(3)!.length], [0, 0], 'the reading went to neither uplink');
  const dropped = nodes[1]!.counters.dropped;
  assert.ok(dropped.noRoute + dropped.unacknowledged > 0, JSON.stringify(dropped));
  // The routes learn that the chosen uplink is out of reach: the origin sends its next readings to the other.
  for (let waited = 0; waited < 1_200_000 && origin.bestUplink()?.idHex !== nodes[other]!.idHex; waited += 10_000) clock.runUntil(clock.now() + 10_000);
  assert.is(origin.bestUplink()?.idHex, nodes[other]!.idHex);
  assert.ok(origin.sendToUplink(reading(2, 120)));
  clock.runUntil(clock.now() + 120_000);
  assert.equal(at.get(other)!.map((m) => [...m.payload]), [[...reading(2, 120)]]);
});

test.run();
