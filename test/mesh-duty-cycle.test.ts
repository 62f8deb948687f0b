// The mesh on a radio with a duty-cycle budget: data leaves a reserve for control, so
// routes hold while readings wait for airtime, none is lost, and no radio ever exceeds
// its sub-band's allowance.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SimMedium, type SimLink } from '../drivers/sim/medium.ts';
import { SeededRandom } from '../drivers/sim/random.ts';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { MeshNode } from '../mesh/node.ts';
import { LORA_TIMERS } from '../mesh/simulation.ts';

const KEY = new Uint8Array(32).fill(6);
const HOUR = 3_600_000;
const reading = (n: number) => Uint8Array.from({ length: 150 }, (_, i) => (i * 13 + n * 7) & 0xff).fill(n & 0xff, 0, 1).fill(n >> 8, 1, 2);

test('on 868.3 MHz (1 %), readings faster than the budget carries: all arrive late, routes hold, control goes on, no radio exceeds 36 s an hour', () => {
  const clock = new VirtualClock();
  const random = new SeededRandom(21);
  const medium = new SimMedium({ clock, random, rangeM: 1000, frequencyHz: 868_300_000 });
  const links = [0, 700, 1400].map((x) => medium.add(x, 0));
  medium.connect();
  const nodes = links.map((link, i) => new MeshNode({ id: new Uint8Array([6, 6, 6, 6, 6, i]), key: KEY, epoch: 1, clock, links: [link], timers: LORA_TIMERS, random: () => random.next() }));
  nodes[0]!.announce('uplink');
  const got = new Set<number>();
  nodes[0]!.onMessage((m) => got.add(m.payload[0]! | (m.payload[1]! << 8)));
  nodes.forEach((n) => n.start());
  const origin = nodes[2]!;

  // The origin as the agent runs it: readings wait in its queue, at most 4 not yet taken
  // by the first hop; one no receipt covers an hour after it went is sent again (here the
  // uplink box's tally stands for the gateway's receipts).
  const queue: number[] = [];
  const sentAt = new Map<number, number>();
  let inFlight = 0;
  const pump = () => {
    while (inFlight < 4 && queue.length) {
      const n = queue[0]!;
      sentAt.set(n, clock.now());
      if (!origin.sendToUplink(reading(n), (taken) => {
        inFlight--;
        if (!taken) queue.unshift(n);
      })) break;
      queue.shift();
      inFlight++;
    }
  };
  const made = 160;
  for (let n = 0; n < made; n++) clock.setTimeout(() => { queue.push(n); pump(); }, 300_000 + n * 20_000);
  const retry = () => {
    for (const [n, at] of sentAt) if (!got.has(n) && at < clock.now() - HOUR && !queue.includes(n)) queue.push(n);
    pump();
    clock.setTimeout(retry, 5000);
  };
  clock.setTimeout(retry, 5000);

  let worst = 0;
  let routeLost = 0;
  const controlAt: number[] = [];
  const sample = () => {
    for (const link of links as SimLink[]) worst = Math.max(worst, link.duty!.usedMs());
    if (clock.now() > 600_000 && !origin.bestUplink()) routeLost++;
    if (clock.now() % 1_800_000 === 0) controlAt.push(nodes[1]!.counters.controlFrames + origin.counters.controlFrames);
    clock.setTimeout(sample, 1000);
  };
  clock.setTimeout(sample, 1000);

  clock.runUntil(1.5 * HOUR);
  const inByThen = got.size;
  clock.runUntil(8 * HOUR);
  // 128 of 160 in by then with a twentieth of the allowance kept for control (under 120
  // with a fifth): the rest waited for budget
  assert.ok(inByThen < made * 0.85, `the budget held readings back (${inByThen} of ${made} in by 1.5 h)`);
  assert.is(got.size, made, `every reading arrived in the end (${got.size})`);
  assert.ok(worst <= 36_000, `no radio spent more than 36 s in any hour (${worst.toFixed(0)} ms)`);
  assert.is(routeLost, 0, 'the origin never lost its route while data waited');
  // control went on in every half hour of the saturated stretch
  for (let i = 1; i < 8; i++) assert.ok(controlAt[i + 1]! > controlAt[i]!, `control frames between ${i / 2} h and ${(i + 1) / 2} h`);
  assert.is(origin.counters.dropped.noRoute, 0, 'the origin dropped nothing: its readings waited');
});

test.run();
