import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DutyCycle, subBandOf, type SubBand } from '../drivers/radio/duty-cycle.ts';
import { loraAirtimeMs, profileOf, SF7_BW250 } from '../drivers/radio/lora-airtime.ts';
import type { Clock } from '../drivers/clock.ts';

function manualClock() {
  let now = 0;
  const clock: Clock = { now: () => now, setTimeout: () => ({ id: 0 }), clearTimeout: () => {} };
  return { clock, advance: (ms: number) => { now += ms; } };
}

function bandOf(region: 'EU868' | 'US915', hz: number, bw = 0): SubBand {
  const band = subBandOf(region, hz, bw);
  if (band instanceof Error) throw band;
  return band;
}

test('airtime: 255 B at SF7/250 kHz is about 200 ms, at SF9/250 kHz about 640 ms', () => {
  const sf7 = loraAirtimeMs(255, SF7_BW250);
  assert.ok(sf7 > 190 && sf7 < 210, String(sf7));
  const sf9 = loraAirtimeMs(255, profileOf({ spreadingFactor: 9, bandwidthHz: 250_000, codingRate: 5 }));
  assert.ok(sf9 > 620 && sf9 < 660, String(sf9));
});

test('EU868 sub-bands: 869.525 MHz at 250 kHz is the 10 % band, 868.1 MHz the 1 % band', () => {
  assert.is(bandOf('EU868', 869_525_000, 250_000).dutyCycle, 0.1);
  assert.is(bandOf('EU868', 868_100_000, 125_000).dutyCycle, 0.01);
  const outside = subBandOf('EU868', 869_300_000, 125_000);
  assert.ok(outside instanceof Error);
  assert.match((outside as Error).message, /869\.3/);
  assert.ok(subBandOf('EU868', 868_550_000, 250_000) instanceof Error, 'a channel straddling two sub-bands is refused');
});

test('duty cycle: 1 % is 36 s per rolling hour, and frames age out of the window', () => {
  const { clock, advance } = manualClock();
  const duty = new DutyCycle(bandOf('EU868', 868_100_000, 125_000), clock);
  assert.is(duty.budgetMs(), 36_000);
  for (let i = 0; i < 36; i++) { assert.ok(duty.allows(1000)); duty.record(1000); advance(1000); }
  assert.is(duty.budgetMs(), 0);
  assert.not.ok(duty.allows(1));
  // The first frame went on air at t=0; it leaves the window one hour later.
  assert.is(duty.waitMs(1000), 3_600_000 - 36_000);
  advance(3_600_000 - 36_000);
  assert.is(duty.budgetMs(), 1000);
  assert.is(duty.waitMs(1000), 0);
});

test('US915: no duty limit, but no frame over 400 ms', () => {
  const { clock } = manualClock();
  const duty = new DutyCycle(bandOf('US915', 915_000_000, 125_000), clock);
  assert.is(duty.budgetMs(), Infinity);
  assert.ok(duty.allows(399));
  assert.not.ok(duty.allows(401));
  assert.is(duty.waitMs(401), Infinity);
});

test.run();
