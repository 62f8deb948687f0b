// The flooding baseline behaves as Meshtastic's managed flooding: three relays for hop
// limit 3, a rebroadcast dropped when another box's is heard first, and a delay that
// grows with the received SNR.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SimMedium } from '../drivers/sim/medium.ts';
import { SeededRandom } from '../drivers/sim/random.ts';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { SF7_BW250 } from '../drivers/radio/lora-airtime.ts';
import { floodDelayMs, floodSlotMs, FloodNode } from '../mesh/flooding.ts';

const KEY = new Uint8Array(32).fill(9);

/** Flooding boxes at the given positions (range 1000 m, no random loss); box 0 the uplink. */
function boxes(positions: [number, number][]) {
  const clock = new VirtualClock();
  const random = new SeededRandom(4);
  const medium = new SimMedium({ clock, random, rangeM: 1000, profile: SF7_BW250 });
  const links = positions.map(([x, y]) => medium.add(x, y));
  medium.connect();
  const nodes = links.map((link, i) => new FloodNode({ id: new Uint8Array([9, 9, 9, 9, 9, i]), link, clock, key: KEY, random: () => random.next(), profile: SF7_BW250 }));
  nodes[0]!.uplink = true;
  const got: string[] = [];
  nodes[0]!.onDelivered((origin, payload) => got.push(`${origin}:${payload.length}`));
  return { clock, medium, nodes, got };
}

test('hop limit 3 allows three relays: on a 5-box line the far end reaches the uplink box in 4 transmissions', () => {
  const { clock, medium, nodes, got } = boxes([[0, 0], [700, 0], [1400, 0], [2100, 0], [2800, 0]]);
  assert.equal(medium.inRange(4), [3], 'each box hears only its neighbours');
  nodes[4]!.send(new Uint8Array(100));
  clock.runUntil(30_000);
  assert.equal(got, [`${nodes[4]!.idHex}:100`]);
  assert.is(medium.totals.frames, 4, 'origin + 3 relays');
});

test('a box that hears another rebroadcast first drops its own', () => {
  // boxes 1 and 2 both hear the origin (3) and each other; the uplink (0) hears both
  const { clock, medium, nodes, got } = boxes([[0, 0], [600, 300], [600, -300], [1200, 0]]);
  nodes[3]!.send(new Uint8Array(50));
  clock.runUntil(30_000);
  assert.is(got.length, 1);
  assert.is(medium.totals.frames, 2, 'the origin and one relay');
  assert.is(nodes[1]!.counters.rebroadcastsCancelled + nodes[2]!.counters.rebroadcastsCancelled, 1);
});

test('rebroadcast delay: slot 8.5·2^SF/BW + 7.6 ms; a weak (−20 dB) copy waits at most 2^3 slots past the router window, a strong one up to 2^8', () => {
  const slot = floodSlotMs(SF7_BW250);
  assert.ok(Math.abs(slot - (8.5 * 128 / 250 + 7.6)) < 1e-9, String(slot));
  const random = new SeededRandom(2);
  const draws = (snr: number) => Array.from({ length: 2000 }, () => Math.round(floodDelayMs(snr, slot, () => random.next()) / slot - 16));
  const weak = draws(-20);
  const strong = draws(15);
  assert.ok(Math.min(...weak) >= 0 && Math.max(...weak) <= 7, `weak: ${Math.min(...weak)}..${Math.max(...weak)} slots`);
  assert.ok(Math.max(...strong) > 128 && Math.max(...strong) <= 255, `strong: up to ${Math.max(...strong)} slots`);
});

test.run();
