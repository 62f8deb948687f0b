// The gateway's contribution ledger through a real Mosquitto: statuses, signed readings,
// beacons, witnesses and relay attestations on their topics, a job posted with
// `iop-agent job post` and allocated; at the epoch's end the table on
// iop/v1/rewards/<epoch> and in the state dir, and `iop-agent rewards` printing an
// owner's parts and a proof that verifies. The epoch's clock is the test's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { GENESIS_PREV, messageHash } from '../agent/codec/chain.ts';
import { signSign1Sync } from '../agent/codec/cose.ts';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import { offsetLocation } from '../agent/contribution/geo.ts';
import { relayHash } from '../agent/contribution/messages.ts';
import { JsonStakeFile, verifyClaim } from '../agent/contribution/rewards.ts';
import { ContributionLedger } from '../agent/gateway/contribution.ts';
import { silentLogger } from '../agent/log.ts';
import { runCli, tempDir } from './helpers/cli.ts';
import { makeBeacon, makeWitness, testBox, type TestBox } from './helpers/contribution.ts';
import { startMosquitto, type Broker } from './helpers/mosquitto.ts';
import { within } from './helpers/pty.ts';

const EPOCH_S = 3600;
const EPOCH = Math.floor(1_795_000_000 / EPOCH_S);
const START = EPOCH * EPOCH_S;
const a = testBox('gw-a');
const b = testBox('gw-b');
const c = testBox('gw-c');
const idle = testBox('gw-idle');
const OWNERS = { a: '0x' + 'a1'.repeat(20), b: '0x' + 'b2'.repeat(20), c: '0x' + 'c3'.repeat(20), idle: '0x' + 'd4'.repeat(20) };
const HERE = { lat: 48.85, lon: 2.35 };

let broker: Broker;
const dir = tempDir('iop-contribution-gw-');
let now = START + 60;
let ledger: ContributionLedger;
let client: MqttClient;

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  await within(ms, what, (async () => {
    while (!check()) await new Promise((r) => setTimeout(r, 50));
  })());
}

function readings(box: TestBox, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev: Uint8Array = GENESIS_PREV;
  for (let seq = 0; seq < count; seq++) {
    const payload = encodeSenmlPack({ time: START + 60 + seq * 300, records: [{ n: 'temperature', u: 'Cel', v: 18 + seq * 0.1 }] });
    const bytes = signSign1Sync({ alg: -8, kid: box.identity.kid, seq, prev }, payload, box.signBytes);
    out.push(bytes);
    prev = messageHash(bytes);
  }
  return out;
}

const publish = (topic: string, payload: Uint8Array | string, retain = false) => client.publishAsync(topic, typeof payload === 'string' ? payload : Buffer.from(payload), { qos: 1, retain });

test.before(async () => {
  broker = await startMosquitto();
  const stakes = join(dir.path, 'stakes.json');
  writeFileSync(stakes, JSON.stringify({ [OWNERS.a]: '1000', [OWNERS.b]: '1000', [OWNERS.c]: '1000', [OWNERS.idle]: '5000' }));
  const issuer = await runCli(['id', '--state-dir', join(dir.path, 'issuer'), '--json']);
  const paired = [[a, OWNERS.a], [b, OWNERS.b], [c, OWNERS.c], [idle, OWNERS.idle]].map(([box, owner]) => ({ device: (box as TestBox).identity.id, owner: owner as string }));
  ledger = new ContributionLedger({
    session: { url: broker.url, clientId: 'contribution-test', tls: {}, keepaliveS: 30, reconnectMinMs: 200, reconnectMaxMs: 1000 } as never,
    stateDir: dir.path, paired: () => paired,
    locations: new Map([[a.identity.id, HERE], [b.identity.id, offsetLocation(HERE, 1500, 0)], [c.identity.id, offsetLocation(HERE, 0, 1500)]]),
    stakes: new JsonStakeFile(stakes),
    pool: 1_000_000n, epochS: EPOCH_S, beaconPeriodS: 900, jobIssuers: [JSON.parse(issuer.stdout.toString()).id], nowS: () => now, log: silentLogger,
  });
  ledger.start();
  client = await mqtt.connectAsync(broker.url);
});

test.after(async () => {
  await client?.endAsync();
  await ledger?.stop();
  await broker?.stop();
  dir.remove();
});

test('one epoch through the broker: evidence in, refusals counted, table published and claimable', async () => {
  for (const box of [a, b, c]) await publish(`iop/v1/${box.identity.id}/status`, JSON.stringify({ online: true, id: box.identity.id, uplink: 'direct', time: now }), true);
  const ofA = readings(a, 6);
  for (const r of ofA.slice(0, 3)) await publish(`iop/v1/${a.identity.id}/data`, r);
  for (const r of readings(b, 3)) await publish(`iop/v1/${b.identity.id}/data`, r);
  await until('readings and statuses taken in', () => ledger.counters.readings === 6 && ledger.counters.statuses === 3);

  // The job: temperature around here, every 5 minutes, signed by the issuer.
  const jobFile = join(dir.path, 'job.json');
  writeFileSync(jobFile, JSON.stringify({ id: 'paris-temp', quantity: { name: 'temperature', unit: 'Cel' }, area: { box: { south: 48, west: 2, north: 49, east: 3 } }, intervalS: 300, from: START, to: START + EPOCH_S, rewardPerSlot: '5' }));
  const posted = await runCli(['job', 'post', jobFile, '--broker', broker.url, '--state-dir', join(dir.path, 'issuer')]);
  assert.is(posted.code, 0, posted.stderr.toString());
  const jobs = new Map<string, unknown>();
  const watcher = await mqtt.connectAsync(broker.url);
  watcher.on('message', (topic, payload) => jobs.set(topic, JSON.parse(payload.toString())));
  await watcher.subscribeAsync('iop/v1/+/jobs');
  await until('the job allocated to the boxes that send temperature', () => jobs.size === 2);
  assert.equal((jobs.get(`iop/v1/${a.identity.id}/jobs`) as { jobs: { id: string }[] }).jobs.map((j) => j.id), ['paris-temp']);
  await watcher.endAsync();
  // b declines (as a box whose sensor samples too seldom does): released, judged on nothing.
  await publish(`iop/v1/${b.identity.id}/jobs/answer`, JSON.stringify({ job: 'paris-temp', accept: false, reason: 'interval 300 s is below this box\'s limit of 900 s' }));
  for (const r of ofA.slice(3)) await publish(`iop/v1/${a.identity.id}/data`, r);

  // Proof of presence: a beacons, b witnesses it; a witnesses itself; the same witness twice.
  now = START + 120;
  const beacon = makeBeacon(a, START + 100);
  await publish(`iop/v1/${a.identity.id}/beacon`, beacon.bytes);
  const witness = makeWitness(b, beacon, a, { rssi: -100 });
  await publish(`iop/v1/${b.identity.id}/witness`, witness);
  await publish(`iop/v1/${b.identity.id}/witness`, witness);
  await publish(`iop/v1/${a.identity.id}/witness`, makeWitness(a, beacon, a));
  await publish(`iop/v1/${c.identity.id}/witness`, makeWitness(b, beacon, a)); // b's witness on c's topic
  // b relayed a's readings 0-2; c claims 0-5 with made-up hashes.
  await publish(`iop/v1/${b.identity.id}/relay`, b.sign({ kind: 'relay', body: { origin: a.identity.kid, firstSeq: 0, hashes: ofA.slice(0, 3).map((r) => relayHash(messageHash(r)).slice()), time: START + 200 } }));
  await publish(`iop/v1/${c.identity.id}/relay`, c.sign({ kind: 'relay', body: { origin: a.identity.kid, firstSeq: 0, hashes: Array.from({ length: 6 }, () => new Uint8Array(8).fill(9)), time: START + 200 } }));
  await until('contribution messages taken in', () => ledger.counters.beacons === 1 && ledger.counters.witnesses === 2 && ledger.counters.relays === 2 && ledger.counters.refused >= 2);

  now = START + EPOCH_S + 700;
  const table = await ledger.close(EPOCH);
  assert.equal(table.counts!.refused, { self: 1, duplicate: 1, 'topic-mismatch': 1 });
  const byDevice = new Map(table.devices.map((d) => [d.device, d]));
  const da = byDevice.get(a.identity.id)!;
  assert.equal([da.evidence.readingsDelivered, da.evidence.witnessesReceived, da.evidence.jobSlotsAllocated, da.evidence.jobSlotsServed], [6, 1, 12, 3]);
  assert.is(da.parts.uptime, 0.983333, 'online from its birth a minute into the epoch');
  assert.is(byDevice.get(b.identity.id)!.parts.jobs, undefined, 'b declined the job');
  assert.equal([byDevice.get(b.identity.id)!.evidence.relayCredited, byDevice.get(c.identity.id)!.evidence.relayCredited, byDevice.get(c.identity.id)!.parts.relay], [3, 0, 0]);
  const owners = new Map(table.owners.map((o) => [o.owner, o]));
  assert.is(owners.get(OWNERS.idle)!.reward, '0', 'stake but no working box: nothing');
  assert.ok(BigInt(owners.get(OWNERS.a)!.reward) > 0n);

  // The same table, retained on its topic and printed by the CLI with a proof that verifies.
  const retained = await mqtt.connectAsync(broker.url);
  const got = new Promise<string>((resolve) => retained.on('message', (_t, p) => resolve(p.toString())));
  await retained.subscribeAsync(`iop/v1/rewards/${EPOCH}`);
  assert.is(JSON.parse(await within(5000, 'retained table', got)).root, table.root);
  await retained.endAsync();
  const cli = await runCli(['rewards', '--epoch', String(EPOCH), '--state-dir', dir.path, '--owner', OWNERS.a, '--json']);
  assert.is(cli.code, 0, cli.stderr.toString());
  const mine = JSON.parse(cli.stdout.toString());
  assert.ok(verifyClaim(mine.root, OWNERS.a, BigInt(mine.owner.cumulative), mine.owner.proof));
  const text = await runCli(['rewards', '--epoch', String(EPOCH), '--state-dir', dir.path, '--by-stake-only']);
  assert.match(text.stdout.toString(), new RegExp(`${OWNERS.idle} +5000 +1 +0\\.0000 +0 +625000 +0`));
  const missing = await runCli(['rewards', '--epoch', String(EPOCH + 1), '--state-dir', dir.path]);
  assert.is(missing.code, 2);
  assert.match(missing.stderr.toString(), /epoch table .*rewards\/\d+\.json/);
});

test('a box online by its birth stays online through the next epoch, in which it sent no status', async () => {
  now = START + 2 * EPOCH_S + 700;
  const next = await ledger.close(EPOCH + 1);
  const uptime = new Map(next.devices.map((d) => [d.device, d.parts.uptime]));
  assert.equal([a, b, c].map((box) => uptime.get(box.identity.id)), [1, 1, 1], 'their birth in the epoch before, no will since');
});

test.run();
