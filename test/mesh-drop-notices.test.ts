// End-to-end drop notices (docs/mesh.md, section 6.2): a relay that gives up on a reading
// tells its origin, which sends it again within seconds instead of at its receipt
// timeout; notices to one origin are gathered and paced; a malformed one is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { decodeNotice, DropNotices, encodeNotice, MAX_NOTICE_IDS } from '../mesh/drop-notices.ts';
import { MeshPacketError } from '../mesh/packet.ts';
import { simBoxes } from './helpers/sim-line.ts';

/** Boxes 800 m apart on a line (range 1000 m), box 0 the uplink. */
const line = (count: number, options: { hopLimit?: number } = {}) => simBoxes(Array.from({ length: count }, (_, i) => [i * 800, 0]), { ...options, seed: 23 });

const reading = (n: number) => Uint8Array.from({ length: 120 }, (_, i) => (i * 31 + n * 7) & 0xff);

test('a reading a relay gives up on (its next hop silent) is sent again by its origin on the relay\'s notice, and arrives', () => {
  const { clock, medium, nodes, got } = line(4);
  clock.runUntil(120_000);
  const origin = nodes[3]!;
  assert.ok(origin.sendToUplink(reading(1)), 'box 3 has a route to the uplink');
  medium.setUp(0, false);
  // The uplink's radio is off until relay 1 has given up and told box 3 (or 5 minutes pass).
  for (let waited = 0; waited < 300_000 && nodes[1]!.counters.dropNotices === 0; waited += 1000) clock.runUntil(clock.now() + 1000);
  medium.setUp(0, true);
  const noticedAt = clock.now();
  assert.ok(nodes[1]!.counters.dropNotices > 0, 'relay 1 told the origin it dropped the reading');
  assert.is(got.length, 0, 'nothing arrived while the uplink was off');
  clock.runUntil(noticedAt + 90_000);
  assert.is(origin.counters.resentOnNotice, 1, 'the origin sent the reading again once');
  assert.is(got.length, 1, 'the reading arrived within 90 s of the notice (the receipt timeout is 15 minutes)');
  assert.equal([...got[0]!.payload], [...reading(1)]);
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

test('a notice that is not a whole number of 4-byte message ids is refused', () => {
  assert.equal(decodeNotice(encodeNotice([1, 0xffff_ffff])), [1, 0xffff_ffff]);
  for (const bad of [new Uint8Array(0), new Uint8Array(5), new Uint8Array(4 * (MAX_NOTICE_IDS + 1))]) {
    assert.throws(() => decodeNotice(bad), (err: unknown) => err instanceof MeshPacketError && /drop notice/.test((err as Error).message));
  }
});

test.run();
