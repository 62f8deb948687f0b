// The channel load a box measures from the frames it hears, and the retry backoff that
// grows with it: a busy channel near an uplink is not given retries at the quiet pace.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { emptyLinkStats, type Link } from '../drivers/link.ts';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { BACKOFF_PER_LOAD, ChannelLoad, retryBackoffMs } from '../mesh/channel-load.ts';

/** A link whose frames take 1 ms of air per byte (a radio), or none (a wire). */
function link(msPerByte: number): Link {
  return {
    name: 'test', mtu: 255, address: '0', overhears: msPerByte > 0, stats: emptyLinkStats(),
    airtimeMs: (bytes) => bytes * msPerByte, budgetMs: () => Infinity, send() {}, onReceive() {}, close() {},
  };
}

test('the share of the last half minute taken by frames heard, and frames older than that leave it', () => {
  const clock = new VirtualClock();
  const load = new ChannelLoad(clock, [link(1), link(0)]);
  assert.is(load.busy(0), 0);
  for (let i = 0; i < 30; i++) {
    load.frame(0, 100); // 100 ms of air each
    load.frame(1, 100); // a wire: no air
    clock.runUntil(clock.now() + 1000);
  }
  assert.ok(Math.abs(load.busy(0) - 0.1) < 0.02, `busy ${load.busy(0)} after 3 s of air in 30 s`);
  assert.is(load.busy(1), 0);
  clock.runUntil(clock.now() + 15_000);
  assert.ok(load.busy(0) < 0.06 && load.busy(0) > 0.03, `half of it left after 15 s quiet: ${load.busy(0)}`);
  clock.runUntil(clock.now() + 30_000);
  assert.is(load.busy(0), 0);
});

test('the retry backoff doubles with each try and grows with the load', () => {
  const top = (tries: number, busy: number) => retryBackoffMs(() => 1, 100, tries, busy);
  assert.is(top(1, 0), 200);
  assert.is(top(2, 0), 400);
  assert.is(top(1, 0.05), 200 * (1 + BACKOFF_PER_LOAD * 0.05));
  assert.ok(top(1, 0.2) > 2 * top(1, 0.02));
  assert.is(retryBackoffMs(() => 0.5, 0, 3, 0.5), 0, 'no air, no wait (a wire)');
});

test.run();
