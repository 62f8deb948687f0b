// Mesh control traffic is authenticated and fresh: an outsider without the key, a
// replayed packet and random or mutated bytes change no route and crash nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SimMedium, type SimLink } from '../drivers/sim/medium.ts';
import { SeededRandom } from '../drivers/sim/random.ts';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { MeshNode } from '../mesh/node.ts';
import { decodePacket, encodePacket, macOf, MeshPacketError, type Packet } from '../mesh/packet.ts';

const KEY = new Uint8Array(32).fill(1);
const WRONG_KEY = new Uint8Array(32).fill(2);
const id = (n: number) => new Uint8Array([9, 9, 9, 9, 9, n]);

/** Two honest boxes (0 has an uplink) and a radio for an attacker, all in range. */
function world() {
  const clock = new VirtualClock();
  const random = new SeededRandom(3);
  const medium = new SimMedium({ clock, random, rangeM: 1000 });
  const links = [medium.add(0, 0), medium.add(300, 0), medium.add(150, 100)];
  medium.connect();
  const nodes = [0, 1].map((i) => new MeshNode({ id: id(i), key: KEY, epoch: 1, clock, links: [links[i]!], random: () => random.next() }));
  nodes[0]!.announce('uplink');
  nodes.forEach((n) => n.start());
  const heard: Uint8Array[] = [];
  links[2]!.onReceive((frame) => heard.push(frame.data));
  return { clock, nodes, attacker: links[2]! as SimLink, heard };
}

// Which uplinks a box routes to and through whom (seqnos move on by themselves).
const routeView = (node: MeshNode) => JSON.stringify(node.status().routes.map((r) => [r.dest, r.uplink, r.via, r.selected, r.total < 0xffff]));

test('packets round-trip; any flipped bit or a wrong key is refused before decoding', () => {
  const packet: Packet = { kind: 'control', sender: id(1), epoch: 3, counter: 77, tlvs: [
    { t: 'hello', seq: 65535, intervalMs: 4000 }, { t: 'ihu', neighbour: id(2), rxcost: 300 },
    { t: 'update', source: id(0), seqno: 12, metric: 512, uplink: true }, { t: 'seqreq', source: id(0), seqno: 13, hops: 5 }, { t: 'routereq' },
  ] };
  const bytes = encodePacket(packet, KEY);
  assert.ok(bytes.length <= 255, `fits a LoRa frame: ${bytes.length} bytes`);
  const decoded = decodePacket(bytes, KEY);
  const plain = (p: unknown) => JSON.stringify(p, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
  assert.is(plain(decoded), plain(packet));
  assert.throws(() => decodePacket(bytes, WRONG_KEY), /MAC does not match/);
  for (let i = 0; i < bytes.length * 8; i += 7) {
    const flipped = bytes.slice();
    flipped[i >> 3]! ^= 1 << (i & 7);
    assert.throws(() => decodePacket(flipped, KEY), (err: Error) => err instanceof MeshPacketError);
  }
});

test('an outsider with the wrong mesh key announcing a better uplink changes no route', () => {
  const { clock, nodes, attacker } = world();
  clock.runUntil(20_000);
  const before = routeView(nodes[1]!);
  assert.ok(nodes[1]!.bestUplink(), 'box 1 routes to box 0');
  for (let counter = 1; counter <= 50; counter++) {
    attacker.send(encodePacket({ kind: 'control', sender: id(66), epoch: 1, counter, tlvs: [
      { t: 'hello', seq: counter, intervalMs: 1000 }, { t: 'ihu', neighbour: id(1), rxcost: 256 },
      { t: 'update', source: id(66), seqno: 1, metric: 0, uplink: true },
      { t: 'update', source: id(0), seqno: 60000, metric: 1, uplink: true },
    ] }, WRONG_KEY));
    clock.runUntil(clock.now() + 500);
  }
  assert.is(routeView(nodes[1]!), before);
  assert.is(nodes[1]!.bestUplink()!.idHex, '090909090900');
  assert.ok(nodes[1]!.counters.rejected.mac >= 50, `refused ${nodes[1]!.counters.rejected.mac}`);
  assert.ok(!nodes[1]!.status().neighbours.some((n) => n.node === '090909090942'), 'the outsider is no neighbour');
});

test('a replayed control packet changes no route', () => {
  const { clock, nodes, attacker, heard } = world();
  clock.runUntil(20_000);
  // Capture box 0's announcements, let it withdraw its uplink, then replay the old ones.
  const captured = heard.filter((bytes) => {
    const p = decodePacket(bytes, KEY);
    return p.kind === 'control' && p.tlvs.some((t) => t.t === 'update' && t.uplink);
  });
  assert.ok(captured.length > 0, 'an announcement was captured');
  nodes[0]!.announce('no');
  clock.runUntil(clock.now() + 5000);
  assert.is(nodes[1]!.bestUplink(), undefined, 'the withdrawal took effect');
  const before = routeView(nodes[1]!);
  const rejected = nodes[1]!.counters.rejected.replay;
  for (const bytes of captured) attacker.send(bytes);
  clock.runUntil(clock.now() + 2000);
  assert.is(nodes[1]!.bestUplink(), undefined, 'no uplink route came back');
  assert.is(routeView(nodes[1]!), before);
  assert.ok(nodes[1]!.counters.rejected.replay - rejected > 0, 'the replays were refused as such');
});

test('fuzz: 100,000 random and mutated packets, none crashes or changes a route', () => {
  const { clock, nodes, heard } = world();
  clock.runUntil(20_000);
  const target = nodes[1]!;
  const before = routeView(target);
  const random = new SeededRandom(42);
  const samples = heard.slice(0, 50);
  let refused = 0;
  const deliver = (target as unknown as { receive(link: number, frame: { data: Uint8Array; from: string }): void });
  for (let i = 0; i < 100_000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = random.bytes(1 + random.int(300));
      if (i % 4 === 0) bytes[0] = 0x10 | random.int(4); // a plausible version byte
    } else {
      bytes = samples[random.int(samples.length)]!.slice();
      const edits = 1 + random.int(4);
      for (let e = 0; e < edits; e++) {
        const op = random.int(3);
        if (op === 0) bytes[random.int(bytes.length)] = random.int(256);
        else if (op === 1) bytes = bytes.subarray(0, random.int(bytes.length));
        else bytes = Uint8Array.from([...bytes, ...random.bytes(1 + random.int(8))]);
      }
    }
    try {
      decodePacket(bytes, KEY);
    } catch (err) {
      assert.instance(err, MeshPacketError);
      refused++;
    }
    deliver.receive(0, { data: bytes, from: '0' });
  }
  assert.ok(refused > 99_000, `refused ${refused}`);
  assert.is(routeView(target), before, 'no route changed');
  // and the box still works
  clock.runUntil(clock.now() + 30_000);
  assert.ok(target.bestUplink());
});

test('fuzz: well-authenticated but malformed bodies are refused with a reason, never thrown past the decoder', () => {
  const random = new SeededRandom(7);
  const reasons = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    // Re-MAC mutated bodies with the right key: the decoder itself must hold.
    const body = random.bytes(1 + random.int(120));
    body[0] = 0x10 | random.int(3);
    const signed = new Uint8Array(body.length + 12);
    signed.set(body);
    const mac = encodeMacFor(body);
    signed.set(mac, body.length);
    try {
      decodePacket(signed, KEY);
    } catch (err) {
      assert.instance(err, MeshPacketError);
      reasons.add((err as Error).message.replace(/\d+/g, 'N').slice(0, 40));
    }
  }
  assert.ok(reasons.size > 5, `many distinct reasons: ${[...reasons].slice(0, 8).join(' | ')}`);
});

function encodeMacFor(body: Uint8Array): Uint8Array {
  return macOf(KEY, body);
}

test.run();
