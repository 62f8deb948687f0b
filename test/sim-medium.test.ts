// The simulated LoRa medium: capture, half duplex, interference from beyond decoding
// range, and the duty-cycle budget every simulated radio keeps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SimMedium, type SimLink } from '../drivers/sim/medium.ts';
import { SeededRandom } from '../drivers/sim/random.ts';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { SF7_BW250 } from '../drivers/radio/lora-airtime.ts';

/** Radios at the given x positions (metres, range 1000, no random loss); what each hears. */
function radios(xs: number[], options: { captureDb?: number; frequencyHz?: number } = {}) {
  const clock = new VirtualClock();
  const medium = new SimMedium({ clock, random: new SeededRandom(3), rangeM: 1000, profile: SF7_BW250, ...options });
  const links = xs.map((x) => medium.add(x, 0));
  medium.connect();
  const heard = links.map(() => [] as string[]);
  links.forEach((link, i) => link.onReceive((f) => heard[i]!.push(`${f.from}:${new TextDecoder().decode(f.data)}`)));
  return { clock, medium, links, heard };
}

const frame = (text: string) => new TextEncoder().encode(text.padEnd(40, '.'));
const heardText = (heard: string[]) => heard.map((h) => h.replace(/\.+$/, ''));

test('capture: of two overlapping frames the one 6 dB stronger than the other survives; equal ones both die', () => {
  // receiver at 0, a sender 100 m away (strong) and one 700 m away (weaker by 21 dB)
  const near = radios([0, -100, 700]);
  // sent at the same instant, so that neither hears the other first
  near.medium.transmit(1, frame('near'), undefined);
  near.medium.transmit(2, frame('far'), undefined);
  near.clock.runUntil(5000);
  assert.equal(heardText(near.heard[0]!), ['1:near']);
  assert.is(near.medium.totals.lostToCollision >= 1, true);
  // equal distance on both sides: neither is 6 dB stronger
  const equal = radios([0, -600, 600]);
  equal.medium.transmit(1, frame('left'), undefined);
  equal.medium.transmit(2, frame('right'), undefined);
  equal.clock.runUntil(5000);
  assert.equal(equal.heard[0], []);
  // a receiver that needed 30 dB would lose both
  const noCapture = radios([0, -100, 700], { captureDb: 30 });
  noCapture.medium.transmit(1, frame('near'), undefined);
  noCapture.medium.transmit(2, frame('far'), undefined);
  noCapture.clock.runUntil(5000);
  assert.equal(noCapture.heard[0], []);
});

test('half duplex: a radio that starts sending loses the frame it was receiving', () => {
  const { clock, links, heard, medium } = radios([0, 500]);
  links[0]!.send(frame('first'));
  // box 1 starts sending in the middle of box 0's frame (its own listen-before-talk bypassed: sent at the same instant it cannot hear yet)
  clock.setTimeout(() => medium.transmit(1, frame('second'), undefined), 20);
  clock.runUntil(5000);
  assert.equal(heard[1], [], 'box 1 heard nothing while it transmitted');
  // and box 0, still sending, cannot hear box 1 either
  assert.equal(heard[0], []);
  assert.is(medium.totals.lostToHalfDuplex, 2);
});

test('interference counts from beyond decoding range: a radio 1,200 m away spoils a frame from 700 m; one at 3 km does not', () => {
  // receiver at 0, sender at 700 m (west), interferer east beyond range
  const close = radios([0, -700, 1200]);
  assert.equal(close.medium.inRange(0), [1], 'the interferer is out of decoding range');
  close.medium.transmit(1, frame('wanted'), undefined);
  close.medium.transmit(2, frame('noise'), undefined);
  close.clock.runUntil(5000);
  assert.equal(close.heard[0], []);
  const far = radios([0, -700, 3000]);
  far.medium.transmit(1, frame('wanted'), undefined);
  far.medium.transmit(2, frame('noise'), undefined);
  far.clock.runUntil(5000);
  assert.equal(heardText(far.heard[0]!), ['1:wanted']);
});

test('duty cycle: on 868.3 MHz (1 %) a radio spends at most 36 s of airtime in any hour; later frames wait, none is lost', () => {
  const { clock, links, heard } = radios([0, 500], { frequencyHz: 868_300_000 });
  const sender = links[0] as SimLink;
  assert.is(sender.budgetMs(), 36_000);
  const airtime = sender.airtimeMs(200);
  const count = Math.ceil((2 * 36_000) / airtime) + 5; // two hours' allowance
  for (let i = 0; i < count; i++) sender.send(new Uint8Array(200).fill(i & 0xff));
  let worst = 0;
  const sample = () => {
    worst = Math.max(worst, sender.duty!.usedMs());
    if (clock.now() < 4 * 3_600_000) clock.setTimeout(sample, 1000);
  };
  sample();
  clock.runUntil(30 * 60_000);
  assert.ok(sender.budgetMs() < airtime, `spent its budget (left ${sender.budgetMs()} ms)`);
  const firstHour = heard[1]!.length;
  assert.ok(firstHour < count, 'not everything went at once');
  clock.runUntil(4 * 3_600_000);
  assert.is(heard[1]!.length, count, 'every frame went in the end');
  assert.ok(worst <= 36_000, `at most the allowance in any hour (${worst} ms)`);
});

test('US915 has no duty cycle but a 400 ms dwell time: a longer frame never goes', () => {
  const clock = new VirtualClock();
  const slow = { ...SF7_BW250, spreadingFactor: 10, bandwidthHz: 500_000 };
  const medium = new SimMedium({ clock, random: new SeededRandom(1), rangeM: 1000, profile: slow, region: 'US915', frequencyHz: 915_000_000 });
  const a = medium.add(0, 0);
  const b = medium.add(100, 0);
  medium.connect();
  const got: number[] = [];
  b.onReceive((f) => got.push(f.data.length));
  assert.is(a.budgetMs(), Infinity);
  assert.ok(a.airtimeMs(250) > 400 && a.airtimeMs(20) < 400);
  a.send(new Uint8Array(250));
  a.send(new Uint8Array(20));
  clock.runUntil(10_000);
  assert.equal(got, [20]);
  assert.is(medium.totals.refused, 1);
});

test.run();
