// Beacons, witnesses, relay attestations, outliers, scores and rewards, and the abuse
// cases the design must resist (docs/rewards.md): each refused case is refused for its
// reason and counted, and the honest case next to it is credited.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { latLngToCell } from 'h3-js';
import { messageHash } from '../agent/codec/chain.ts';
import { offsetLocation, type Location } from '../agent/contribution/geo.ts';
import { allocate, answerJob, JobLedger, parseJob } from '../agent/contribution/jobs.ts';
import { beaconFrame, beaconInFrame, openContribution, relayHash } from '../agent/contribution/messages.ts';
import { flagOutliers } from '../agent/contribution/outliers.ts';
import { DEFAULT_PRESENCE_RULES, PresenceLedger } from '../agent/contribution/presence.ts';
import { RelayBatcher, RelayLedger } from '../agent/contribution/relay.ts';
import { claimTree, ownerRewards, verifyClaim } from '../agent/contribution/rewards.ts';
import { epochTable, cumulativeOf, scoreDevices } from '../agent/contribution/epoch.ts';
import { defaultScoreRules, emptyEvidence, score } from '../agent/contribution/score.ts';
import { uptimeSeconds } from '../agent/contribution/uptime.ts';
import { answerFor } from '../agent/contribution/job-answer.ts';
import { answerJobs } from '../agent/contribution/job-answers.ts';
import { Sampler } from '../agent/sampler.ts';
import { silentLogger } from '../agent/log.ts';
import type { Sensor } from '../sensors/sensor.ts';
import { EventEmitter } from 'node:events';
import { makeBeacon, makeWitness, testBox, type TestBox } from './helpers/contribution.ts';

const EPOCH = 20_000;
const START = EPOCH * 86_400;
const BASE: Location = { lat: 52.37, lon: 4.89 };
const a = testBox('a');
const b = testBox('b');
const c = testBox('c');

function ledger(options: { owners?: Record<string, string>; locations?: Record<string, Location> } = {}): PresenceLedger {
  return new PresenceLedger({
    ...DEFAULT_PRESENCE_RULES, epoch: EPOCH,
    ownerOf: (d) => options.owners?.[d], locationOf: (d) => options.locations?.[d],
  });
}

const owners = (map: [TestBox, string][]) => Object.fromEntries(map.map(([box, owner]) => [box.identity.id, owner]));

test('a beacon fits a radio frame, carries a magic byte no mesh packet starts with, and opens with its signer', () => {
  const beacon = makeBeacon(a, START + 100);
  const frame = beaconFrame(beacon.bytes);
  assert.ok(frame.length <= 160, `beacon frame of ${frame.length} bytes`);
  assert.is(frame[0]! >> 4, 0xb);
  assert.equal(beaconInFrame(frame), beacon.bytes);
  assert.is(beaconInFrame(new Uint8Array([0x11, 1, 2])), undefined);
  const opened = openContribution(beacon.bytes);
  assert.is(opened.signer.id, a.identity.id);
  assert.ok(opened.valid);
  assert.equal(opened.message, { kind: 'beacon', body: beacon.body });
  const witness = openContribution(makeWitness(b, beacon, a));
  assert.ok(witness.valid);
  assert.ok(witness.bytes.length <= 180, `witness of ${witness.bytes.length} bytes: one fragment of the mesh's default 180 bytes`);
});

test('an honest witness is credited to both boxes; a tampered one is refused as bad-signature', () => {
  const l = ledger({ owners: owners([[a, '0x01'], [b, '0x02']]) });
  const beacon = makeBeacon(a, START + 100);
  assert.ok(l.add(beacon.bytes).ok);
  const witness = makeWitness(b, beacon, a);
  const tampered = witness.slice();
  tampered[tampered.length - 1]! ^= 1;
  assert.equal(l.add(tampered), { ok: false, reason: 'bad-signature', detail: `signature of ${b.identity.id} does not verify` });
  assert.ok(l.add(witness).ok);
  const out = l.settle();
  assert.is(out.witnessesValid, 1);
  assert.equal(out.byDevice.get(b.identity.id), { beacons: 0, given: 1, received: 0 });
  assert.equal(out.byDevice.get(a.identity.id), { beacons: 1, given: 0, received: 1 });
  assert.is(out.refused['bad-signature'], 1);
});

test('a box witnessing its own beacon is refused as self and earns nothing', () => {
  const l = ledger();
  const beacon = makeBeacon(a, START + 100);
  l.add(beacon.bytes);
  assert.ok(l.add(makeWitness(a, beacon, a)).ok, 'taken in, judged at the end of the epoch');
  const out = l.settle();
  assert.is(out.refused.self, 1);
  assert.is(out.witnessesValid, 0);
  assert.equal(out.byDevice.get(a.identity.id), { beacons: 1, given: 0, received: 0 });
});

test('two boxes of one owner witnessing only each other get no witness credit; another owner\'s box does', () => {
  const l = ledger({ owners: owners([[a, '0xaa'], [b, '0xaa'], [c, '0xcc']]) });
  const ba = makeBeacon(a, START + 100);
  const bb = makeBeacon(b, START + 200);
  l.add(ba.bytes);
  l.add(bb.bytes);
  l.add(makeWitness(b, ba, a));
  l.add(makeWitness(a, bb, b));
  l.add(makeWitness(c, ba, a));
  const out = l.settle();
  assert.is(out.witnessesValid, 3);
  assert.is(out.witnessesUncredited.sameOwner, 2);
  assert.equal(out.byDevice.get(b.identity.id), { beacons: 1, given: 0, received: 0 });
  assert.equal(out.byDevice.get(a.identity.id), { beacons: 1, given: 0, received: 1 });
  assert.equal(out.byDevice.get(c.identity.id), { beacons: 0, given: 1, received: 0 });
  const rules = defaultScoreRules();
  const witnessPart = (given: number, received: number) => score({ ...emptyEvidence(), witnessesGiven: given, witnessesReceived: received }, rules).parts.witnesses;
  assert.is(witnessPart(0, 0), 0, 'the pair alone: nothing');
});

test('replays are refused and counted: the same beacon or witness again, an old epoch, another region, a second beacon in one period', () => {
  const l = ledger();
  const beacon = makeBeacon(a, START + 100);
  assert.ok(l.add(beacon.bytes).ok);
  assert.equal(l.add(beacon.bytes).ok, false);
  const witness = makeWitness(b, beacon, a);
  assert.ok(l.add(witness).ok);
  const again = l.add(witness);
  assert.ok(!again.ok && again.reason === 'duplicate');
  const old = makeBeacon(c, START - 86_400 + 50);
  const oldRefusal = l.add(old.bytes);
  assert.ok(!oldRefusal.ok && oldRefusal.reason === 'old-epoch', JSON.stringify(oldRefusal));
  const oldWitness = l.add(makeWitness(b, old, c, { receivedAt: START - 86_400 + 51 }));
  assert.ok(!oldWitness.ok && oldWitness.reason === 'old-epoch');
  const us = l.add(makeBeacon(c, START + 500, { region: 'US915', frequencyHz: 915_000_000 }).bytes);
  assert.ok(!us.ok && us.reason === 'other-region');
  const usWitness = l.add(makeWitness(c, beacon, a, { region: 'US915' }));
  assert.ok(!usWitness.ok && usWitness.reason === 'other-region');
  const twice = l.add(makeBeacon(a, START + 3600).bytes);
  assert.ok(!twice.ok && twice.reason === 'too-frequent', 'a second beacon within the 6 h period');
  assert.ok(l.add(makeBeacon(a, START + 21_600 + 10).bytes).ok, 'the next period is fine');
  const out = l.settle();
  assert.equal([out.refused.duplicate, out.refused['old-epoch'], out.refused['other-region'], out.refused['too-frequent']], [2, 2, 2, 1]);
  assert.is(out.witnessesValid, 1);
});

test('witness checks against the beacon: unknown beacon, window, frequency, beaconer, and RSSI stronger than free space allows', () => {
  const at = { [a.identity.id]: BASE, [b.identity.id]: offsetLocation(BASE, 2000, 0), [c.identity.id]: offsetLocation(BASE, 0, 300_000) };
  const l = ledger({ owners: owners([[a, '0x1'], [b, '0x2'], [c, '0x3']]), locations: at });
  const beacon = makeBeacon(a, START + 100);
  l.add(beacon.bytes);
  const ghost = makeBeacon(c, START + 100);
  const fspl2km = 20 * Math.log10((4 * Math.PI * 2000 * 869_525_000) / 2.998e8); // ≈ 97.3 dB
  const cases: [string, Uint8Array][] = [
    ['unknown-beacon', makeWitness(b, ghost, c)],
    ['outside-window', makeWitness(testBox('late'), beacon, a, { receivedAt: START + 100 + 600 })],
    ['frequency', makeWitness(testBox('freq'), beacon, a, { frequencyHz: 868_100_000 })],
    ['beaconer-mismatch', makeWitness(testBox('mismatch'), beacon, c)],
  ];
  for (const [, bytes] of cases) assert.ok(l.add(bytes).ok);
  // b is 2 km away: 14 dBm minus ~97 dB is about -83 dBm in free space; -60 is impossible.
  assert.ok(l.add(makeWitness(b, beacon, a, { rssi: Math.round(14 - fspl2km + 25) })).ok);
  const out = l.settle();
  for (const [reason] of cases) assert.is(out.refused[reason as keyof typeof out.refused], 1, reason);
  assert.is(out.refused['too-strong'], 1);
  assert.is(out.witnessesValid, 0);
  const honest = ledger({ owners: owners([[a, '0x1'], [b, '0x2']]), locations: at });
  honest.add(beacon.bytes);
  honest.add(makeWitness(b, beacon, a, { rssi: -100 }));
  assert.is(honest.settle().witnessesValid, 1);
  const far = ledger({ locations: at });
  far.add(beacon.bytes);
  far.add(makeWitness(c, beacon, a, { rssi: -130 }));
  assert.is(far.settle().refused['too-far'], 1, '300 km is beyond any LoRa link');
});

function relayFixture() {
  const readings = Array.from({ length: 6 }, (_, i) => new TextEncoder().encode(`reading ${i} of a`));
  const hashes = readings.map((r) => messageHash(r));
  const relays = new RelayLedger({ startS: START, endS: START + 86_400, readingHash: (origin, seq) => (origin === a.identity.id ? hashes[seq] : undefined) });
  return { hashes, relays };
}

test('a relay is credited for the readings whose hashes match; claiming readings it did not carry earns nothing', () => {
  const { hashes, relays } = relayFixture();
  const honest = new RelayBatcher();
  [0, 1, 2, 4].forEach((seq) => honest.add(a.identity.kid, seq, hashes[seq]!));
  assert.is(honest.carried.get(a.identity.id), 4);
  const [attestation] = honest.flush(START + 600);
  assert.is(attestation!.hashes.length, 5, 'seq 0 to 4, seq 3 empty');
  assert.is(attestation!.hashes[3]!.length, 0);
  assert.ok(relays.add(b.sign({ kind: 'relay', body: attestation! })).ok);
  // c claims seqs 0-4 with invented hashes
  const invented = { origin: a.identity.kid, firstSeq: 0, hashes: Array.from({ length: 5 }, (_, i) => new Uint8Array(8).fill(i + 1)), time: START + 700 };
  const answer = relays.add(c.sign({ kind: 'relay', body: invented }));
  assert.equal(answer, { ok: true, matched: 0, claimed: 5 });
  const self = relays.add(a.sign({ kind: 'relay', body: { ...invented, hashes: [relayHash(hashes[0]!)] } }));
  assert.ok(!self.ok && self.reason === 'self');
  const old = relays.add(b.sign({ kind: 'relay', body: { ...attestation!, time: START - 10 } }));
  assert.ok(!old.ok && old.reason === 'old-epoch');
  const credits = relays.settle();
  assert.equal(credits.get(b.identity.id), { claimed: 4, credited: 4 });
  assert.equal(credits.get(c.identity.id), { claimed: 5, credited: 0 });
  assert.is(relays.unmatched, 5);
  const rules = defaultScoreRules();
  assert.is(score({ ...emptyEvidence(), relayClaimed: 5, relayCredited: 0 }, rules).parts.relay, 0);
  assert.is(score({ ...emptyEvidence(), relayClaimed: 4, relayCredited: 4 }, rules).parts.relay, 1);
});

test('a reading two relays both attest with the right hash is credited half to each', () => {
  const { hashes, relays } = relayFixture();
  for (const relay of [b, c]) relays.add(relay.sign({ kind: 'relay', body: { origin: a.identity.kid, firstSeq: 2, hashes: [relayHash(hashes[2]!)], time: START + 5 } }));
  assert.equal(relays.settle().get(c.identity.id), { claimed: 1, credited: 0.5 });
});

test('constant and random values are flagged as outliers by their neighbours; honest values are not', () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const flaggedCount = new Map<string, number>();
  for (let slot = 0; slot < 48; slot++) {
    const truth = 12 + 6 * Math.sin((slot / 48) * 2 * Math.PI);
    const values = Array.from({ length: 8 }, (_, i) => ({ device: `honest${i}`, value: truth + (rand() - 0.5) * 0.6 }));
    values.push({ device: 'constant', value: 15 }, { device: 'random', value: -20 + rand() * 70 });
    for (const d of flagOutliers(values)) flaggedCount.set(d, (flaggedCount.get(d) ?? 0) + 1);
  }
  assert.ok((flaggedCount.get('constant') ?? 0) >= 24, `constant flagged in ${flaggedCount.get('constant')} of 48 slots`);
  assert.ok((flaggedCount.get('random') ?? 0) >= 40, `random flagged in ${flaggedCount.get('random')} of 48 slots`);
  for (let i = 0; i < 8; i++) assert.is(flaggedCount.get(`honest${i}`) ?? 0, 0, `honest${i}`);
});

test('the documented worked example: parts, weights and the outlier factor', () => {
  const rules = defaultScoreRules();
  const s = score({
    readingsExpected: 288, readingsDelivered: 274, uptimeS: 82_080, beacons: true, witnessesGiven: 6, witnessesReceived: 3,
    jobSlotsAllocated: 144, jobSlotsServed: 130, jobReadingsJudged: 130, outliers: 2, relayClaimed: 0, relayCredited: 0,
  }, rules);
  // delivery 274/288 = 0.951389, uptime 0.95, witnesses 0.5·1 + 0.5·0.75 = 0.875, jobs 130/144 = 0.902778
  assert.equal(s.parts, { delivery: 0.951389, uptime: 0.95, witnesses: 0.875, jobs: 0.902778 });
  // (0.35·0.951389 + 0.15·0.95 + 0.2·0.875 + 0.2·0.902778) / 0.9 = 0.923380; × (1 - 2·2/130) = 0.894968
  assert.is(s.outlierFactor, 0.969231);
  assert.is(s.performance, 0.894968);
});

test('an owner with stake but no working boxes gets zero; by stake alone they would get their share', () => {
  const stakes = new Map([['0x' + '1'.repeat(40), 1000n], ['0x' + '2'.repeat(40), 3000n], ['0x' + '3'.repeat(40), 500n]]);
  const idle = score({ ...emptyEvidence(), readingsExpected: 288 }, defaultScoreRules());
  assert.is(idle.performance, 0);
  const devices = [
    { device: 'd1', owner: '0x' + '1'.repeat(40), performance: 0.9 },
    { device: 'd2', owner: '0x' + '2'.repeat(40), performance: idle.performance },
    { device: 'd3', owner: '0x' + '3'.repeat(40), performance: 0.5 },
    { device: 'd4', owner: '0x' + '3'.repeat(40), performance: 1 },
  ];
  const rows = ownerRewards(1_000_000n, stakes, devices);
  const by = Object.fromEntries(rows.map((r) => [r.owner[2], r.reward]));
  // weights: 1000·0.9 = 900, 3000·0 = 0, 500·0.75 = 375
  assert.equal(by, { 1: (1_000_000n * 900n) / 1275n, 2: 0n, 3: (1_000_000n * 375n) / 1275n });
  const stakeOnly = Object.fromEntries(ownerRewards(1_000_000n, stakes, devices, true).map((r) => [r.owner[2], r.reward]));
  assert.equal(stakeOnly, { 1: (1_000_000n * 1000n) / 4500n, 2: (1_000_000n * 3000n) / 4500n, 3: (1_000_000n * 500n) / 4500n });
  assert.ok(rows.reduce((s, r) => s + r.reward, 0n) <= 1_000_000n);
});

test('cumulative amounts across epochs: the Merkle proof of the latest root pays every missed epoch in one claim', () => {
  const owner1 = '0x' + 'a'.repeat(40);
  const owner2 = '0x' + 'b'.repeat(40);
  const stakes = new Map([[owner1, 100n], [owner2, 100n]]);
  const devices = (p1: number, p2: number) => scoreDevices({
    rules: defaultScoreRules(),
    devices: [
      { device: 'x', owner: owner1, readingsExpected: 10, readingsDelivered: Math.round(10 * p1), uptimeS: 86_400 * p1, beacons: false },
      { device: 'y', owner: owner2, readingsExpected: 10, readingsDelivered: Math.round(10 * p2), uptimeS: 86_400 * p2, beacons: false },
    ],
  });
  const first = epochTable({ epoch: 1, pool: 1000n, stakes, devices: devices(1, 1) });
  const second = epochTable({ epoch: 2, pool: 1000n, stakes, devices: devices(1, 0), previous: cumulativeOf(first) });
  const o1 = second.owners.find((o) => o.owner === owner1)!;
  assert.equal([first.owners[0]!.reward, o1.reward, o1.cumulative], ['500', '1000', '1500']);
  assert.ok(verifyClaim(second.root!, owner1, 1500n, o1.proof));
  assert.not.ok(verifyClaim(second.root!, owner1, 2000n, o1.proof), 'a larger amount does not verify');
  assert.is(second.owners.find((o) => o.owner === owner2)!.cumulative, '500');
  assert.is(claimTree(new Map()), undefined);
});

test('jobs: a signed job is parsed, allocated by H3 cell or box to boxes with the sensor, answered, and its slots counted', () => {
  const here = BASE;
  const cell = latLngToCell(here.lat, here.lon, 7);
  const job = parseJob({ id: 'temp-1', quantity: { name: 'temperature', unit: 'Cel' }, area: { h3: [cell] }, intervalS: 600, from: START, to: START + 3600, rewardPerSlot: '10' });
  assert.throws(() => parseJob({ ...job, intervalS: 0 }), /intervalS must be a whole number/);
  assert.throws(() => parseJob({ ...job, area: { h3: ['nope'] } }), /valid H3 cells/);
  const temp = [{ name: 'temperature', unit: 'Cel' }];
  const boxes = [
    { device: 'near', location: offsetLocation(here, 50, 50), quantities: temp },
    { device: 'far', location: offsetLocation(here, 50_000, 0), quantities: temp },
    { device: 'nosensor', location: here, quantities: [{ name: 'humidity', unit: '%RH' }] },
    { device: 'nowhere', location: undefined, quantities: temp },
  ];
  assert.equal(allocate(job, boxes), ['near']);
  assert.equal(allocate({ ...job, area: { box: { south: 52, west: 4, north: 53, east: 6 } } }, boxes), ['near', 'far']);
  assert.equal(answerJob(job, { quantities: temp, minIntervalS: 60, nowS: START }), { accept: true, intervalS: 600 });
  assert.equal(answerJob(job, { quantities: temp, minIntervalS: 900, nowS: START }), { accept: false, reason: 'interval 600 s is below this box\'s limit of 900 s (duty cycle, power)' });
  const ledgerOfJob = new JobLedger(job, ['near'], { startS: START, endS: START + 86_400 });
  for (let i = 0; i < 4; i++) assert.ok(ledgerOfJob.add({ device: 'near', timeS: START + i * 600 + 5, name: 'temperature', unit: 'Cel', value: 20 }));
  assert.not.ok(ledgerOfJob.add({ device: 'near', timeS: START + 10, name: 'temperature', unit: 'Cel', value: 20 }), 'slot 0 already served');
  assert.not.ok(ledgerOfJob.add({ device: 'far', timeS: START + 10, name: 'temperature', unit: 'Cel', value: 20 }), 'not allocated');
  assert.equal(ledgerOfJob.settle().credits.get('near'), { slotsAllocated: 6, slotsServed: 4, judged: 0, outliers: 0 });
});

test('a box answers a job by its sensors: accepted when one samples often enough, declined with the reason', () => {
  const job = { id: 'j', quantity: { name: 'temperature', unit: 'Cel' }, area: { box: { south: 0, west: 0, north: 1, east: 1 } }, intervalS: 600, from: START, to: START + 86_400, rewardPerSlot: '1' };
  const sensors = [{ name: 'outdoor', kind: 'simulated/temperature', intervalMs: 60_000 }, { name: 'soil', kind: 'ds18b20', intervalMs: 900_000 }];
  assert.equal(answerFor(job, sensors, START), { job: 'j', answer: { accept: true, intervalS: 600 }, sensor: 'outdoor', to: START + 86_400 });
  assert.equal(answerFor(job, [sensors[1]!], START).answer, { accept: false, reason: 'interval 600 s is below this box\'s limit of 900 s (duty cycle, power)' });
  assert.equal(answerFor({ ...job, quantity: { name: 'pm2.5', unit: 'ug/m3' } }, sensors, START).answer, { accept: false, reason: 'no sensor of pm2.5' });
  assert.equal(answerFor(job, sensors, START + 90_000).answer, { accept: false, reason: 'the job has ended' });
  assert.throws(() => answerFor({ ...job, id: '' }, sensors, START), /id must be/);
});

test('a box with a sampler accepts a job its sensor samples too seldom and reads it at the job\'s interval while the job lasts', async () => {
  const job = { id: 'soil-5min', quantity: { name: 'temperature', unit: 'Cel' }, area: { box: { south: 0, west: 0, north: 1, east: 1 } }, intervalS: 300, from: START, to: START + 86_400, rewardPerSlot: '1' };
  const reads = new Map<string, number[]>();
  const sensor = (name: string, kind: string): Sensor => ({
    name, kind, start: async () => {}, stop: async () => {}, health: () => ({ ok: true, reads: 0, failures: 0, causes: {} }),
    read: async (nowMs) => { reads.set(name, [...(reads.get(name) ?? []), nowMs]); return [{ n: '', u: 'Cel', v: 20 }]; },
  });
  const sampler = new Sampler({ intervalMs: 60_000, sensors: [{ sensor: sensor('soil', 'ds18b20'), intervalMs: 900_000 }, { sensor: sensor('air', 'simulated/humidity'), intervalMs: 900_000 }], log: silentLogger });
  const session = new EventEmitter();
  const answers: unknown[] = [];
  const client = { subscribe: () => {}, publishAsync: async (_t: string, payload: string) => { answers.push(JSON.parse(payload)); } };
  let now = START;
  const answering = answerJobs(session as never, { device: 'box', sensors: [{ name: 'soil', kind: 'ds18b20', intervalMs: 900_000 }, { name: 'air', kind: 'simulated/humidity', intervalMs: 900_000 }], log: silentLogger, sampler, nowS: () => now });
  session.emit('connect', client);
  const runFor = async (fromS: number, minutes: number) => {
    reads.clear();
    for (let m = 0; m < minutes; m++) await sampler.tick((fromS + m * 60) * 1000);
    return { soil: reads.get('soil')?.length ?? 0, air: reads.get('air')?.length ?? 0 };
  };
  assert.equal(await runFor(now, 60), { soil: 4, air: 4 }, 'every 15 minutes before the job');
  const list = async (jobs: unknown[]) => {
    session.emit('message', 'iop/v1/box/jobs', Buffer.from(JSON.stringify({ jobs })));
    await answering.settled();
  };
  // Too fast for the box's tick: declined with the reason; the 5-minute job accepted.
  await list([job, { ...job, id: 'too-fast', intervalS: 30 }]);
  assert.equal(answers, [{ job: 'soil-5min', accept: true, intervalS: 300 }, { job: 'too-fast', accept: false, reason: 'interval 30 s is below this box\'s limit of 60 s (duty cycle, power)' }]);
  assert.equal(await runFor(START + 3600, 60), { soil: 12, air: 4 }, 'the job\'s sensor every 5 minutes, the other as configured');
  // Withdrawn (an empty list): back to its own interval.
  await list([]);
  assert.equal(await runFor(START + 7200, 60), { soil: 4, air: 4 });
  // Listed again but ended: not sampled for.
  now = START + 90_000;
  await list([job]);
  assert.equal(await runFor(START + 10_800, 60), { soil: 4, air: 4 });
});

test('uptime from birth, heartbeats and last will, within the epoch', () => {
  const s = START;
  assert.is(uptimeSeconds([{ time: s + 100, online: true, everyS: 300 }, { time: s + 400, online: true, everyS: 300 }, { time: s + 700, online: false }], s, s + 86_400), 600);
  // heartbeats stop without a will: three intervals, then offline
  assert.is(uptimeSeconds([{ time: s + 100, online: true, everyS: 300 }], s, s + 86_400), 900);
  assert.is(uptimeSeconds([{ time: s - 100, online: true, everyS: 300 }], s, s + 86_400), 800, 'clipped to the epoch');
});

test.run();
