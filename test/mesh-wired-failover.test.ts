// Neighbour loss on wired or IP links (UDP on Ethernet or WiFi), in virtual time: a
// neighbour whose hello is late is probed at once and taken down when the probe goes
// unanswered, so a ring fails over within one hello interval plus a round trip; a single
// lost hello is answered and changes nothing; hellos there carry IHUs only every few.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Clock } from '../drivers/clock.ts';
import { emptyLinkStats, type Link, type ReceivedFrame } from '../drivers/link.ts';
import { SeededRandom } from '../drivers/sim/random.ts';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { DEFAULT_TIMERS, MeshNode } from '../mesh/node.ts';
import { decodePacket } from '../mesh/packet.ts';

const KEY = new Uint8Array(32).fill(3);

/** One end of a point-to-point cable: frames arrive 1 ms later unless the cable is cut or `drop` says so. */
class CableEnd implements Link {
  readonly name: string;
  readonly mtu = 1400;
  readonly overhears = false;
  readonly stats = emptyLinkStats();
  peer: CableEnd | undefined;
  cut = false;
  drop: (data: Uint8Array) => boolean = () => false;
  readonly sent: Uint8Array[] = [];
  private handler: ((frame: ReceivedFrame) => void) | undefined;
  private readonly clock: Clock;
  readonly address: string;

  constructor(clock: Clock, name: string) {
    this.clock = clock;
    this.name = name;
    this.address = name;
  }

  airtimeMs(): number {
    return 0;
  }

  budgetMs(): number {
    return Infinity;
  }

  send(data: Uint8Array): void {
    this.sent.push(data);
    this.stats.txFrames++;
    this.stats.txBytes += data.length;
    const peer = this.peer;
    if (!peer || this.cut || this.drop(data)) return;
    this.clock.setTimeout(() => peer.handler?.({ data, from: this.address }), 1);
  }

  onReceive(handler: (frame: ReceivedFrame) => void): void {
    this.handler = handler;
  }

  close(): void {}
}

/** A ring of n boxes joined by cables; cables[i] joins box i and box i+1 (mod n). */
function ring(n: number) {
  const clock = new VirtualClock();
  const random = new SeededRandom(5);
  const cables = Array.from({ length: n }, (_, i) => {
    const a = new CableEnd(clock, `b${i}-r`);
    const b = new CableEnd(clock, `b${(i + 1) % n}-l`);
    a.peer = b;
    b.peer = a;
    return { a, b, cut: () => { a.cut = true; b.cut = true; } };
  });
  const nodes = Array.from({ length: n }, (_, i) => new MeshNode({
    id: new Uint8Array([6, 6, 6, 6, 6, i]), key: KEY, epoch: 1, clock,
    links: [cables[i]!.a, cables[(i + n - 1) % n]!.b], random: () => random.next(),
  }));
  nodes.forEach((node) => node.announce('node'));
  nodes.forEach((node) => node.start());
  return { clock, cables, nodes };
}

const routeTo = (from: MeshNode, to: MeshNode) => from.status().routes.find((r) => r.selected && r.dest === to.idHex && r.total < 0xffff);

test('a silently cut cable in a ring: the box routes round the other way within one hello interval plus a round trip', () => {
  const { clock, cables, nodes } = ring(8);
  clock.runUntil(60_000);
  for (let trial = 0; trial < 3; trial++) {
    const before = routeTo(nodes[0]!, nodes[4]!);
    assert.ok(before, 'box 0 has a route to box 4');
    const cable = before!.link === cables[0]!.a.name ? cables[0]! : cables[7]!;
    const cutAt = clock.now() + trial * 1000; // somewhere else in the hello cycle each time
    clock.runUntil(cutAt);
    cable.cut();
    let movedAt: number | undefined;
    while (clock.now() < cutAt + 20_000 && movedAt === undefined) {
      clock.runUntil(clock.now() + 50);
      const r = routeTo(nodes[0]!, nodes[4]!);
      if (r && r.link !== before!.link) movedAt = clock.now();
    }
    assert.ok(movedAt !== undefined, 'box 0 routes round the other way');
    // the hello is due within helloMax; then the slack (100 ms), the probe's wait and this loop's 50 ms steps
    const bound = DEFAULT_TIMERS.helloMaxMs + 100 + 100 + DEFAULT_TIMERS.ackTimeoutMs + 60;
    assert.ok(movedAt! - cutAt <= bound, `failover took ${movedAt! - cutAt} ms, more than ${bound}`);
    // mend the cable for the next trial, somewhere else in the hello cycle
    cable.a.cut = false;
    cable.b.cut = false;
    clock.runUntil(clock.now() + 30_000);
  }
});

test('one lost hello on a cable is answered by the probe: the neighbour stays up, its cost unchanged', () => {
  const { clock, cables, nodes } = ring(3);
  clock.runUntil(60_000);
  const neighbour = () => nodes[0]!.status().neighbours.find((n) => n.link === cables[0]!.a.name)!;
  assert.ok(neighbour().cost < 0xffff);
  // box 1 loses its next hello toward box 0 (the frame on cables[0], box 1's end)
  let dropped = 0;
  cables[0]!.b.drop = (data) => {
    const p = decodePacket(data, KEY);
    const isHello = p.kind === 'control' && p.tlvs.length >= 1 && p.tlvs[0]!.t === 'hello' && !p.tlvs.some((t) => t.t === 'routereq');
    if (isHello && dropped === 0) {
      dropped++;
      return true;
    }
    return false;
  };
  const probesBefore = nodes[0]!.status().controlTlvs.routereq ?? 0;
  let worst = 0;
  for (let t = 0; t < 20_000; t += 50) {
    clock.runUntil(clock.now() + 50);
    worst = Math.max(worst, neighbour().cost);
  }
  assert.is(dropped, 1);
  assert.ok((nodes[0]!.status().controlTlvs.routereq ?? 0) > probesBefore, 'box 0 probed box 1');
  assert.ok(worst < 0xffff, 'box 1 never counted as gone');
});

test('hellos on a cable carry IHUs only every fourth while nothing changes', () => {
  const { clock, cables } = ring(3);
  clock.runUntil(60_000);
  const from = cables[0]!.a.sent.length;
  clock.runUntil(120_000);
  const hellos = cables[0]!.a.sent.slice(from).map((d) => decodePacket(d, KEY))
    .filter((p) => p.kind === 'control' && p.tlvs.some((t) => t.t === 'hello'));
  const withIhu = hellos.filter((p) => p.kind === 'control' && p.tlvs.some((t) => t.t === 'ihu'));
  assert.ok(hellos.length >= 16, `${hellos.length} hellos in a minute`);
  assert.ok(withIhu.length >= hellos.length / 4 - 1 && withIhu.length <= hellos.length / 4 + 1, `${withIhu.length} of ${hellos.length} hellos carried IHUs`);
});

test.run();
