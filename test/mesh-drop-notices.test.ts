// End-to-end drop notices (docs/mesh.md, section 6.2): a reading leaves with a hop limit
// from its route's metric; a relay that stops it there tells its origin, which sends it
// again within seconds instead of at its receipt timeout; notices to one origin are
// gathered and paced; a malformed one is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { decodeNotice, DropNotices, encodeNotice, MAX_NOTICE_IDS } from '../mesh/drop-notices.ts';
import { decodePacket, MeshPacketError } from '../mesh/packet.ts';
import { SIM_MESH_KEY, simBoxes } from './helpers/sim-line.ts';

/** Boxes 800 m apart on a line (range 1000 m), box 0 the uplink. */
const line = (count: number, options: { hopLimit?: number } = {}) => simBoxes(Array.from({ length: count }, (_, i) => [i * 800, 0]), { ...options, seed: 23 });

const reading = (n: number) => Uint8Array.from({ length: 120 }, (_, i) => (i * 31 + n * 7) & 0xff);

test('a reading leaves with a hop limit of its route\'s metric in hops plus 4, not the configured 16', () => {
  const { clock, nodes, got } = line(4);
  clock.runUntil(120_000);
  const origin = nodes[3]!;
  const sent: number[] = [];
  const link = origin.links[0]!;
  const send = link.send.bind(link);
  link.send = (bytes, to) => {
    const packet = decodePacket(bytes, SIM_MESH_KEY);
    if (packet.kind === 'data') sent.push(packet.hopLimit);
    return send(bytes, to);
  };
  const route = origin.status().routes.find((r) => r.selected && r.uplink)!;
  assert.ok(origin.sendToUplink(reading(1)));
  clock.runUntil(clock.now() + 60_000);
  assert.is(got.length, 1);
  assert.ok(sent.length > 0);
  const expected = Math.ceil(route.total / 256) + 4;
  assert.ok(expected >= 7 && expected < 16, `3 hops: a limit of ${expected}`);
  assert.ok(sent.every((h) => h === expected), `hop limits sent: ${sent.join(', ')}`);
});

test('a reading dropped at the hop limit is sent again at most twice on notices, then left to the origin\'s timeout', () => {
  const { clock, nodes, got } = line(4, { hopLimit: 2 });
  clock.runUntil(120_000);
  assert.ok(nodes[3]!.sendToUplink(reading(2)));
  clock.runUntil(clock.now() + 180_000);
  assert.is(got.length, 0);
  assert.is(nodes[1]!.counters.dropped.hopLimit, 3, 'the first try and two more met the hop limit at relay 1');
  assert.is(nodes[3]!.counters.resentOnNotice, 2);
});

test('notices to one origin are gathered into one message and paced; ids past the bound are left out', () => {
  const clock = new VirtualClock();
  const sent: { origin: string; ids: number[]; at: number }[] = [];
  const notices = new DropNotices({
    clock, pauseMs: 8000,
    send: (origin, payload) => sent.push({ origin: origin.join(','), ids: decodeNotice(payload), at: clock.now() }) > 0,
  });
  const a = new Uint8Array([1, 1, 1, 1, 1, 1]);
  const b = new Uint8Array([2, 2, 2, 2, 2, 2]);
  for (let id = 0; id < MAX_NOTICE_IDS + 4; id++) notices.dropped(a, id);
  notices.dropped(b, 7);
  clock.runUntil(2000);
  assert.equal(sent.map((s) => [s.origin, s.ids.length, s.at]), [['1,1,1,1,1,1', MAX_NOTICE_IDS, 2000], ['2,2,2,2,2,2', 1, 2000]]);
  notices.dropped(a, 100);
  clock.runUntil(9000);
  assert.is(sent.length, 2, 'the next notice to the same origin waits for the pause');
  clock.runUntil(10_000);
  assert.equal(sent[2], { origin: '1,1,1,1,1,1', ids: [100], at: 10_000 });
});

test('the pause between notices to one origin doubles while drops keep coming, and starts again after a quiet spell', () => {
  const clock = new VirtualClock();
  const at: number[] = [];
  const notices = new DropNotices({ clock, pauseMs: 8000, send: () => at.push(clock.now()) > 0 });
  const origin = new Uint8Array([3, 3, 3, 3, 3, 3]);
  const dropAt = (ms: number) => {
    clock.runUntil(ms);
    notices.dropped(origin, ms);
  };
  dropAt(0);
  dropAt(3000);
  dropAt(11_000);
  dropAt(27_000);
  clock.runUntil(200_000);
  assert.equal(at, [2000, 10_000, 26_000, 58_000], 'pauses of 8, 16 and 32 s');
  dropAt(58_000 + 8000 * 64 + 1000);
  dropAt(58_000 + 8000 * 64 + 3000);
  clock.runUntil(1_000_000);
  assert.equal(at.slice(4), [58_000 + 8000 * 64 + 3000, 58_000 + 8000 * 64 + 11_000], 'after a quiet spell the pause is 8 s again');
});

test('a notice that is not a whole number of 4-byte message ids is refused', () => {
  assert.equal(decodeNotice(encodeNotice([1, 0xffff_ffff])), [1, 0xffff_ffff]);
  for (const bad of [new Uint8Array(0), new Uint8Array(5), new Uint8Array(4 * (MAX_NOTICE_IDS + 1))]) {
    assert.throws(() => decodeNotice(bad), (err: unknown) => err instanceof MeshPacketError && /drop notice/.test((err as Error).message));
  }
});

test.run();
