// Scoring one epoch (docs/rewards.md): 10,000 devices on a grid, each beaconing 4 times
// and witnessing its 8 neighbours' beacons, one in five relayed by an uplink box that
// attests every reading, 100 data jobs of 100 boxes with a reading every 10 minutes, and
// heartbeats every 5 minutes. What is timed is what the gateway does at the end of the
// epoch: judge the witnesses, credit relays, find job outliers, uptime, scores, owners'
// rewards and the Merkle tree with every owner's proof. Collecting the messages during the
// epoch (after their signatures were checked) is timed apart. The reference, measured in
// the same run: 1,000 Ed25519 signature verifications (node:crypto). Times are the
// process's CPU time (one thread: one core), which other processes on a shared machine
// disturb far less than the wall clock; the wall clock is printed beside.
// Usage: npm run bench:rewards [-- --quick]   (--quick: 1,000 devices, for CI)
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ED25519, identityFromPublicKey, type DeviceIdentity } from '../agent/codec/identity.ts';
import { toHex } from '../agent/codec/hex.ts';
import { epochTable, scoreDevices } from '../agent/contribution/epoch.ts';
import { offsetLocation, type Location } from '../agent/contribution/geo.ts';
import { JobLedger, type Job } from '../agent/contribution/jobs.ts';
import { beaconerOf } from '../agent/contribution/messages.ts';
import { DEFAULT_PRESENCE_RULES, PresenceLedger } from '../agent/contribution/presence.ts';
import { RelayLedger } from '../agent/contribution/relay.ts';
import { defaultScoreRules } from '../agent/contribution/score.ts';
import { uptimeSeconds, type StatusEvent } from '../agent/contribution/uptime.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const DEVICES = values.quick ? 1_000 : 10_000;
const EPOCH = 20_000;
const EPOCH_S = 86_400;
const START = EPOCH * EPOCH_S;
const SPACING_M = 1500;
const BASE: Location = { lat: 52.0, lon: 5.0 };

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32);
}
const random = seeded(42);

// The world: devices on a square grid, two per owner, owners' stakes.
const side = Math.ceil(Math.sqrt(DEVICES));
const devices: { identity: DeviceIdentity; location: Location; owner: string }[] = Array.from({ length: DEVICES }, (_, i) => {
  const key = Uint8Array.from({ length: 32 }, () => Math.floor(random() * 256));
  return {
    identity: identityFromPublicKey(ED25519, key),
    location: offsetLocation(BASE, (i % side) * SPACING_M, Math.floor(i / side) * SPACING_M),
    owner: `0x${(Math.floor(i / 2) + 1).toString(16).padStart(40, '0')}`,
  };
});
const byId = new Map(devices.map((d) => [d.identity.id, d]));
const stakes = new Map([...new Set(devices.map((d) => d.owner))].map((o) => [o, BigInt(1000 + Math.floor(random() * 9000))]));
const neighbours = (i: number) => {
  const out: number[] = [];
  const x = i % side;
  const y = Math.floor(i / side);
  for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
    const j = (y + dy) * side + x + dx;
    if ((dx || dy) && x + dx >= 0 && x + dx < side && y + dy >= 0 && j < DEVICES && j >= 0) out.push(j);
  }
  return out;
};

// The epoch's messages, as the gateway takes them in once their signatures are checked.
const collectStarted = performance.now();
const presence = new PresenceLedger({
  ...DEFAULT_PRESENCE_RULES, epoch: EPOCH,
  ownerOf: (d) => byId.get(d)?.owner, locationOf: (d) => byId.get(d)?.location,
});
for (let period = 0; period < 4; period++) {
  devices.forEach((d, i) => {
    const time = START + period * 21_600 + Math.floor(random() * 21_000);
    const id = Uint8Array.from({ length: 16 }, () => Math.floor(random() * 256));
    const body = { time, nonce: id.subarray(0, 8), region: 'EU868', frequencyHz: 869_525_000, eirpDbm: 14 };
    presence.addBeacon(d.identity.id, body, toHex(id));
    for (const j of neighbours(i)) {
      presence.addWitness(devices[j]!.identity.id, {
        beaconId: id, beaconer: beaconerOf(d.identity.kid), receivedAt: time + 1, rssi: -105 - Math.floor(random() * 15), snr: -5, frequencyHz: 869_525_000, link: 'lora', region: 'EU868',
      });
    }
  });
}
const readingHash = (origin: string, seq: number) => {
  const h = new Uint8Array(32);
  h.set(byId.get(origin)!.identity.publicKey.subarray(0, 28));
  new DataView(h.buffer).setUint32(28, seq);
  return h;
};
const relays = new RelayLedger({ startS: START, endS: START + EPOCH_S, readingHash });
devices.forEach((d, i) => {
  if (i % 5 !== 1) return;
  const relay = devices[i - 1]!.identity.id;
  for (let hour = 0; hour < 24; hour++) {
    relays.addAttestation(relay, { origin: d.identity.kid, firstSeq: hour * 12, hashes: Array.from({ length: 12 }, (_, k) => readingHash(d.identity.id, hour * 12 + k).subarray(0, 8)), time: START + hour * 3600 + 3599 });
  }
});
const jobs: JobLedger[] = [];
for (let block = 0; block * 100 < DEVICES; block++) {
  const members = devices.slice(block * 100, block * 100 + 100);
  const job: Job = { id: `job-${block}`, quantity: { name: 'temperature', unit: 'Cel' }, area: { box: { south: -90, west: -180, north: 90, east: 180 } }, intervalS: 600, from: START, to: START + EPOCH_S, rewardPerSlot: '1' };
  const ledger = new JobLedger(job, members.map((m) => m.identity.id), { startS: START, endS: START + EPOCH_S });
  for (let slot = 0; slot < 144; slot++) {
    const truth = 15 + 5 * Math.sin((2 * Math.PI * slot) / 144);
    members.forEach((m, k) => ledger.add({ device: m.identity.id, timeS: START + slot * 600 + 7, name: 'temperature', unit: 'Cel', value: k === 13 ? 40 : truth + (random() - 0.5), location: m.location }));
  }
  jobs.push(ledger);
}
const heartbeats: StatusEvent[][] = devices.map(() => Array.from({ length: 288 }, (_, k) => ({ time: START + k * 300 + 3, online: true, everyS: 300 })));
const collectS = (performance.now() - collectStarted) / 1000;

// The reference: 1,000 signature verifications on this machine, now.
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const message = new Uint8Array(200).fill(7);
const signature = sign(null, message, privateKey);
const cpuSeconds = (from: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
};
const referenceStarted = process.cpuUsage();
for (let i = 0; i < 1000; i++) verify(null, message, publicKey, signature);
const referenceS = cpuSeconds(referenceStarted);

// What the gateway does when the epoch ends.
const started = performance.now();
const cpuStarted = process.cpuUsage();
const outcome = presence.settle();
const relayCredits = relays.settle();
const jobCredits = jobs.map((j) => j.settle().credits);
const scored = scoreDevices({
  rules: defaultScoreRules(),
  devices: devices.map((d, i) => ({ device: d.identity.id, owner: d.owner, readingsExpected: 288, readingsDelivered: 288 - (i % 7), uptimeS: uptimeSeconds(heartbeats[i]!, START, START + EPOCH_S), beacons: true })),
  presence: outcome, relays: relayCredits, jobs: jobCredits,
});
const table = epochTable({ epoch: EPOCH, pool: 10n ** 24n, stakes, devices: scored });
const scoringS = cpuSeconds(cpuStarted);
const scoringWallS = (performance.now() - started) / 1000;

const mean = scored.reduce((s, d) => s + d.performance, 0) / scored.length;
console.log(`${DEVICES} devices, ${stakes.size} owners: ${outcome.beacons} beacons, ${outcome.witnessesValid} valid witnesses, ${[...relayCredits.values()].reduce((s, r) => s + r.claimed, 0)} relayed readings attested, ${jobs.length} jobs × 144 slots; mean performance ${mean.toFixed(3)}, root ${table.root!.slice(0, 18)}…`);
console.log(`collecting the epoch's messages (signatures already checked) ${collectS.toFixed(2)} s`);
console.log(`scoring one epoch: ${scoringS.toFixed(2)} s  ${(scoringS / referenceS).toFixed(2)}x 1,000 Ed25519 verifications (${(referenceS * 1000).toFixed(1)} ms) (CPU time; wall ${scoringWallS.toFixed(2)} s)`);
const goal = values.quick ? `quick run of ${DEVICES} devices; the goal is for 10,000` : scoringS <= 10 ? 'MET' : 'NOT MET';
console.log(`goal: scoring 10,000 devices for one epoch <= 10 s on one core: ${goal}`);
