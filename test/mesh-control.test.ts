// Control traffic on a radio in steady state, in virtual time: with the LoRa timers a
// quiet box sends one control frame per interval, its route dump riding on its hello
// (docs/mesh.md sections 4 and 5).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SimMedium } from '../drivers/sim/medium.ts';
import { SeededRandom } from '../drivers/sim/random.ts';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { MeshNode } from '../mesh/node.ts';
import { decodePacket, type ControlPacket } from '../mesh/packet.ts';
import { LORA_TIMERS } from '../mesh/simulation.ts';

const KEY = new Uint8Array(32).fill(9);

/** Boxes on a line 800 m apart (range 1000 m), box 0 the uplink; every frame each box sends, with its time. */
function line(n: number, seed: number) {
  const clock = new VirtualClock();
  const random = new SeededRandom(seed);
  const medium = new SimMedium({ clock, random, rangeM: 1000 });
  const links = Array.from({ length: n }, (_, i) => medium.add(800 * i, 0));
  medium.connect();
  const sent = links.map(() => [] as { at: number; bytes: Uint8Array }[]);
  links.forEach((link, i) => {
    const send = link.send.bind(link);
    link.send = (bytes, to) => {
      sent[i]!.push({ at: clock.now(), bytes });
      send(bytes, to);
    };
  });
  const nodes = links.map((link, i) => new MeshNode({
    id: new Uint8Array([7, 7, 7, 7, 7, i]), key: KEY, epoch: 1, clock, links: [link], timers: LORA_TIMERS, random: () => random.next(),
  }));
  nodes[0]!.announce('uplink');
  nodes.forEach((node) => node.start());
  return { clock, nodes, sent };
}

test('a quiet radio box sends one control frame per interval: the route dump rides on the hello', () => {
  for (const seed of [1, 2, 3]) {
    const { clock, nodes, sent } = line(3, seed);
    const from = 3_600_000;
    const to = from + 6 * 3_600_000;
    clock.runUntil(to);
    assert.ok(nodes[2]!.bestUplink(), 'the far box has a route to the uplink');
    assert.is(LORA_TIMERS.helloMaxMs, LORA_TIMERS.updateMaxMs, 'on LoRa hellos come as seldom as route dumps');
    for (const [i, frames] of sent.entries()) {
      const control = frames.filter((f) => f.at >= from && f.at < to).map((f) => decodePacket(f.bytes, KEY)).filter((p): p is ControlPacket => p.kind === 'control');
      const dumps = control.filter((p) => p.tlvs.some((t) => t.t === 'update'));
      const alone = control.filter((p) => !p.tlvs.some((t) => t.t === 'update') || !p.tlvs.some((t) => t.t === 'hello'));
      // A timer fires within 0.75-1 of its interval: at most this many firings in the window.
      const most = Math.ceil((to - from) / (0.75 * LORA_TIMERS.helloMaxMs));
      assert.ok(control.length <= most, `seed ${seed} box ${i}: ${control.length} control frames in 6 h, at most ${most} expected`);
      assert.ok(dumps.length >= (to - from) / LORA_TIMERS.updateMaxMs - 1, `seed ${seed} box ${i}: ${dumps.length} route dumps`);
      assert.ok(alone.length <= 1, `seed ${seed} box ${i}: ${alone.length} frames carried a hello or a dump alone`);
    }
  }
});

test.run();
