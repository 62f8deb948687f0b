// Drop notices (docs/mesh.md, section 6.2): a reading leaves with a hop limit from its
// route's metric; a relay that stops it there drops it without a notice (the origin's
// receipt timeout recovers it); a notice from a box of an earlier version is still acted
// on, paced by a pause that doubles while notices keep coming; a malformed one is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { decodeNotice, DoublingPause, encodeNotice, MAX_NOTICE_IDS } from '../mesh/drop-notices.ts';
import { plainEnvelope } from '../mesh/compression.ts';
import { MessageEnds } from '../mesh/message-ends.ts';
import { decodePacket, MeshPacketError, nodeIdHex, type DataPacket, type DataType } from '../mesh/packet.ts';
import type { MeshCounters } from '../mesh/types.ts';
import type { MeshNode } from '../mesh/node.ts';
import { SIM_MESH_KEY, simBoxes } from './helpers/sim-line.ts';

/** Boxes 800 m apart on a line (range 1000 m), box 0 the uplink. */
const line = (count: number, options: { hopLimit?: number } = {}) => simBoxes(Array.from({ length: count }, (_, i) => [i * 800, 0]), { ...options, seed: 23 });

const reading = (n: number) => Uint8Array.from({ length: 120 }, (_, i) => (i * 31 + n * 7) & 0xff);

/** Tells `seen` of every data packet the node puts on its radio. */
function watchData(node: MeshNode, seen: (packet: DataPacket) => void): void {
  const link = node.links[0]!;
  const send = link.send.bind(link);
  link.send = (bytes, to) => {
    const packet = decodePacket(bytes, SIM_MESH_KEY);
    if (packet.kind === 'data') seen(packet);
    return send(bytes, to);
  };
}

test('a reading leaves with a hop limit of its route\'s metric in hops plus 4, not the configured 16', () => {
  const { clock, nodes, got } = line(4);
  clock.runUntil(120_000);
  const origin = nodes[3]!;
  const sent: number[] = [];
  watchData(origin, (packet) => sent.push(packet.hopLimit));
  const route = origin.status().routes.find((r) => r.selected && r.uplink)!;
  assert.ok(origin.sendToUplink(reading(1)));
  clock.runUntil(clock.now() + 60_000);
  assert.is(got.length, 1);
  assert.ok(sent.length > 0);
  const expected = Math.ceil(route.total / 256) + 4;
  assert.ok(expected >= 7 && expected < 16, `3 hops: a limit of ${expected}`);
  assert.ok(sent.every((h) => h === expected), `hop limits sent: ${sent.join(', ')}`);
});

test('a reading dropped at the hop limit is not noticed: no notice goes back and the origin sends nothing again', () => {
  const { clock, nodes, got } = line(4, { hopLimit: 2 });
  clock.runUntil(120_000);
  const types: DataType[] = [];
  for (const node of nodes) watchData(node, (packet) => types.push(packet.type));
  assert.ok(nodes[3]!.sendToUplink(reading(2)));
  clock.runUntil(clock.now() + 180_000);
  assert.is(got.length, 0);
  assert.is(nodes[1]!.counters.dropped.hopLimit, 1, 'the reading met the hop limit at relay 1, once');
  assert.ok(types.length > 0 && types.every((t) => t === 'reading'), `data sent: ${types.join(', ')}`);
  assert.is(nodes[3]!.counters.resentOnNotice, 0);
});

const counters = (): MeshCounters => ({
  controlFrames: 0, controlBytes: 0, dataFrames: 0, dataBytes: 0, ackFrames: 0, ackBytes: 0, forwarded: 0, delivered: 0,
  heldForBudget: 0, dropped: { noRoute: 0, hopLimit: 0, unacknowledged: 0 }, dropNotices: 0, resentOnNotice: 0, rejected: { mac: 0, replay: 0, malformed: 0 },
});

test('a notice from a box of an earlier version still brings the origin to send the message again, at most twice', () => {
  const clock = new VirtualClock();
  const again: Uint8Array[] = [];
  const dest = new Uint8Array([9, 9, 9, 9, 9, 9]);
  const relay = new Uint8Array([7, 7, 7, 7, 7, 7]);
  const ends = new MessageEnds({
    clock, retryMs: 4000, random: () => 0.5, counters: counters(), deliver: () => {},
    send: () => true,
    sendAgain: (m) => {
      again.push(m.payload);
      // sent again as a new message, as the data plane does
      ends.envelope(again.length * 100, m.dest, nodeIdHex(m.dest), m.type, m.payload, false);
    },
  });
  const notice = (msgId: number) => ends.arrived({ type: 'dropped', origin: relay, msgId } as DataPacket, nodeIdHex(relay), plainEnvelope(encodeNotice([msgId])));
  ends.envelope(5, dest, nodeIdHex(dest), 'reading', reading(5), false);
  notice(5);
  clock.runUntil(60_000);
  assert.equal(again, [reading(5)], 'sent again after a pause of 1-2 retry intervals');
  notice(100);
  clock.runUntil(200_000);
  notice(200);
  clock.runUntil(400_000);
  assert.is(again.length, 2, 'the third notice is left to the receipt timeout');
});

test('the pause between messages sent again on notices doubles while they keep coming, and starts again after a quiet spell', () => {
  const pause = new DoublingPause(8000);
  assert.equal([0, 3000, 11_000, 27_000].map((at) => pause.next(at)), [8000, 16_000, 32_000, 64_000]);
  assert.is(pause.next(27_000 + 8000 * 64 + 1), 8000, 'after a quiet spell the pause is the shortest again');
});

test('a notice that is not a whole number of 4-byte message ids is refused', () => {
  assert.equal(decodeNotice(encodeNotice([1, 0xffff_ffff])), [1, 0xffff_ffff]);
  for (const bad of [new Uint8Array(0), new Uint8Array(5), new Uint8Array(4 * (MAX_NOTICE_IDS + 1))]) {
    assert.throws(() => decodeNotice(bad), (err: unknown) => err instanceof MeshPacketError && /drop notice/.test((err as Error).message));
  }
});

test.run();
