// Gateway throughput: signed readings of several boxes verified, stored and receipted by
// `iop-agent gateway` processes, against bare Ed25519 verification (node:crypto, the same
// message) measured in the same run. Three set-ups: one gateway on SQLite, one on
// PostgreSQL, two on one PostgreSQL database (one shared subscription).
// Each box's retained status is published first, as a box does when it connects; the
// gateways start, connect (on PostgreSQL: learn of each other and, from the statuses, of
// the devices, and subscribe to those each owns: device affinity), take and receipt a
// warm-up (32,000 readings per gateway of 8 other boxes by default, --warmup 0 for none; not timed: each process's start,
// V8 compiling its hot path, is not what a gateway does per reading) and are paused (SIGSTOP); the
// readings (the boxes interleaved at random, each in its own order, as a fleet sends them) are queued in Mosquitto for their persistent sessions, and
// the gateways resumed together (SIGCONT): what is timed is their work alone, from then to
// the receipt that names every box's last reading. "Per core" divides by the CPU time the
// gateway processes used (what one core gives); the wall rate is what the machine gave,
// its cores shared with the broker, the database and whatever else runs.
// Where the CPU goes is printed too: the gateways', the broker's and the database's CPU
// time per reading (from /proc), and `--profile DIR` writes each gateway's CPU profile.
// Usage: npm run bench:gateway [-- --readings N --devices D --warmup N --profile DIR --postgres-only --no-affinity] [--quick]   (--quick: 2,000 readings, for CI)
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { parseSign1, sigStructure } from '../agent/codec/cose.ts';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import { verifyReceipt } from '../agent/codec/receipt.ts';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import { silentLogger } from '../agent/log.ts';
import { Sampler } from '../agent/sampler.ts';
import { signNext, type SignedMessage } from '../agent/signer.ts';
import { deviceTopic } from '../agent/uplink/topics.ts';
import { startMosquitto } from '../harness/mosquitto.ts';
import { postgresBin, startPostgres, type Postgres } from '../harness/postgres.ts';
import { createSimulatedSensor, SIMULATED_QUANTITIES } from '../sensors/simulated.ts';

const { values } = parseArgs({ options: { readings: { type: 'string' }, devices: { type: 'string' }, quick: { type: 'boolean' }, warmup: { type: 'string' }, profile: { type: 'string' }, 'postgres-only': { type: 'boolean' }, 'no-affinity': { type: 'boolean' } } });
const count = Number(values.readings ?? (values.quick ? 2_000 : 40_000));
const deviceCount = Number(values.devices ?? 8);
/**
 * readings of other boxes each gateway takes before the timed run (--warmup 0: none, a fresh
 * process measured). Per gateway: V8 compiles each process's hot code (to its last tier only
 * after well over 4,000 readings), and two gateways sharing 4,000 readings still compiled it
 * in the timed run, 15 µs per reading against one gateway's 8 (perf, at 87ee410); with
 * 16,000 each, two gateways still cost about 7 µs more per reading than one, with 32,000
 * about as much.
 */
const warmupCount = Number(values.warmup ?? (values.quick ? 400 : 32_000));
/** the most gateways a run starts: the warm-up boxes hold as many readings per gateway */
const MAX_PROCESSES = 2;
const CLI = join(import.meta.dirname, '..', 'agent', 'cli.ts');
const CLOCK_TICKS = 100; // USER_HZ on Linux
const work = mkdtempSync(join(tmpdir(), 'iop-bench-gateway-'));

interface Box { id: string; messages: SignedMessage[] }

/** `total` readings of `deviceCount` boxes (state dirs `<name>-<n>`), signed like the boxes sign them, as many per box. */
async function makeReadings(total: number, name: string): Promise<Box[]> {
  const sampler = new Sampler({
    intervalMs: 1000,
    sensors: SIMULATED_QUANTITIES.map((quantity) => ({ sensor: createSimulatedSensor({ name: quantity, quantity }), intervalMs: 1000 })),
    log: silentLogger,
  });
  if (total === 0) return [];
  const perBox = Math.ceil(total / deviceCount);
  const boxes: Box[] = [];
  for (let d = 0; d < deviceCount; d++) {
    // One reading a second up to now: recent enough for the gateway to take.
    let now = Date.now() - perBox * 1000;
    const { key, identity } = loadDeviceKey(join(work, `${name}-${d}`), { create: true });
    const messages: SignedMessage[] = [];
    for (let i = 0; i < perBox; i++) {
      const pack = (await sampler.tick((now += 1000), { all: true }))!;
      messages.push(await signNext(key, identity, messages.at(-1), encodeSenmlPack(pack)));
    }
    boxes.push({ id: identity.id, messages });
  }
  return boxes;
}

function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // gone meanwhile
  }
}

function cpuTicks(pid: number): number {
  const fields = statFields(pid)!;
  return Number(fields[11]) + Number(fields[12]); // utime, stime
}

/**
 * CPU time of a process and its children (PostgreSQL: the postmaster and its backends),
 * the ended ones included (cutime, cstime).
 */
function treeTicks(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const own = statFields(pid);
  if (!own) return 0;
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields && Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks;
}

/** Busy and total jiffies of each core. */
function coreTimes(): { busy: number; total: number }[] {
  return readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).map((line) => {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number) as number[];
    const busy = user! + nice! + system! + irq! + softirq! + steal!;
    return { busy, total: busy + idle! + iowait! };
  });
}

interface Gateway { child: ChildProcess; stderr: string; stdout: string; connectedAt?: number; exited: Promise<void> }

function startGateway(args: string[]): Gateway {
  const profile = values.profile ? ['--cpu-prof', '--cpu-prof-dir', values.profile] : [];
  const child = spawn(process.execPath, [...profile, CLI, 'gateway', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const gateway: Gateway = { child, stderr: '', stdout: '', exited: new Promise((resolve) => child.once('exit', () => resolve())) };
  child.stdout!.on('data', (c) => (gateway.stdout += c));
  child.stderr!.on('data', (c) => {
    gateway.stderr += c;
    if (gateway.connectedAt === undefined && /connected/.test(gateway.stderr)) gateway.connectedAt = performance.now();
  });
  return gateway;
}

async function waitFor(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Run {
  label: string; processes: number; wallPerS: number; perCorePerS: number; bare: number; cores: number[]; accepted: number;
  /** warm-up readings taken before the timed part (all gateways) */
  warmTotal: number;
  /** readings each gateway accepted */
  split: number[];
  /** readings a gateway found stored already (by another, or twice received) */
  duplicates: number;
  /** CPU microseconds per reading of the gateways, the broker and the database */
  perReadingUs: { gateways: number; broker: number; database: number };
}

/** Each box's retained status, as a box publishes it when it connects: how gateways with device affinity learn of devices they have not seen (and subscribe to their readings). */
async function announce(url: string, boxes: Box[]): Promise<void> {
  const announcer = await mqtt.connectAsync(url, { protocolVersion: 5 });
  for (const box of boxes) await announcer.publishAsync(deviceTopic(box.id, 'status'), JSON.stringify({ online: true, id: box.id, uplink: 'direct' }), { qos: 1, retain: true });
  await announcer.endAsync();
}

/** The readings in fleet order, QoS 1, many in flight. */
async function publishReadings(url: string, boxes: Box[]): Promise<void> {
  const publisher = await mqtt.connectAsync(url, { protocolVersion: 5 });
  const all = fleetOrder(boxes);
  let next = 0;
  await Promise.all(Array.from({ length: 1000 }, async () => {
    while (next < all.length) {
      const m = all[next++]!;
      await publisher.publishAsync(m.topic, m.bytes, { qos: 1 });
    }
  }));
  await publisher.endAsync();
}

/** Watches the receipts: `doneAt` is set when each box's receipt names its last reading in one run from seq 0. */
async function watchReceipts(url: string, boxes: Box[]) {
  const covered = new Map(boxes.map((b) => [b.id, -1]));
  const watcher = await mqtt.connectAsync(url, { protocolVersion: 5 });
  const state = { covered, doneAt: 0, end: () => watcher.endAsync() };
  watcher.on('message', (_topic, payload) => {
    const receipt = verifyReceipt(new Uint8Array(payload));
    if (!covered.has(receipt.device)) return;
    if (receipt.ranges[0]!.first === 0) covered.set(receipt.device, Math.max(covered.get(receipt.device)!, receipt.ranges[0]!.last));
    if (!state.doneAt && boxes.every((b) => covered.get(b.id) === b.messages.length - 1)) state.doneAt = performance.now();
  });
  await watcher.subscribeAsync('iop/v1/+/ack', { qos: 1 });
  return state;
}

async function run(label: string, boxes: Box[], allWarmup: Box[], processes: number, db: string | undefined, reference: () => number): Promise<Run> {
  // Each gateway's share: every box's first readings (a run of them from seq 0).
  const warmup = allWarmup.map((b) => ({ id: b.id, messages: b.messages.slice(0, Math.ceil(b.messages.length * processes / MAX_PROCESSES)) }));
  const warmTotal = warmup.reduce((sum, b) => sum + b.messages.length, 0);
  const broker = await startMosquitto({ extra: ['max_queued_messages 1000000'] });
  const stateDir = join(work, `gw-${label.replace(/\W+/g, '-')}`);
  loadDeviceKey(stateDir, { create: true });
  await announce(broker.url, boxes);
  const args = (i: number) => ['--broker', broker.url, '--state-dir', stateDir, '--allow-any', '--session', `bench-gw-${i}`, ...(db ? ['--db', db] : []), ...(values['no-affinity'] ? ['--no-affinity'] : [])];
  const gateways = Array.from({ length: processes }, (_, i) => startGateway(args(i)));
  try {
    // The gateways start, connect and (on PostgreSQL) learn of each other, then are paused
    // (SIGSTOP) while the readings queue for them in the broker, and resumed together: what
    // is timed is their work alone, not their start, nor the publisher's.
    await waitFor('the gateways to connect', () => gateways.every((g) => g.connectedAt !== undefined), 60_000);
    if (db && processes > 1 && !values['no-affinity']) {
      const sharing = new RegExp(`gateways sharing the devices: ${gateways.map((_, i) => `bench-gw-${i}`).join(', ')}\n`);
      await waitFor('the gateways to learn of each other', () => gateways.every((g) => sharing.test(g.stderr)), 30_000);
      // Each takes the readings of the devices it owns (subscribed): all of them between them.
      // (the last such line; none while a subscription it gave up still brings readings)
      const taking = (g: Gateway) => Number(/taking the readings of (\d+) devices$/.exec(g.stderr.split('\n').filter((l) => l.includes('taking the readings')).at(-1) ?? '')?.[1] ?? 0);
      const subscribed = (devices: number) => waitFor('the gateways to subscribe to their devices', () => gateways.reduce((sum, g) => sum + taking(g), 0) === devices, 30_000).catch((err) => {
        throw new Error(`${err.message}; the gateways said:\n${gateways.map((g) => g.stderr).join('\n')}`);
      });
      await subscribed(boxes.length);
      // The warm-up boxes' ordinals after the measured ones': those split evenly too.
      await announce(broker.url, warmup);
      await subscribed(boxes.length + warmup.length);
    } else if (db && !values['no-affinity']) {
      await waitFor('the gateway to subscribe', () => gateways.every((g) => /taking the readings of every device$/m.test(g.stderr)), 30_000);
    }
    // Warm-up, not timed: other boxes' readings taken and receipted first, so that the timed
    // ones do not pay for each gateway process's start (V8 compiling the hot path, pools
    // filling): two gateways paid it twice over half the readings each.
    if (warmup.length) {
      const warm = await watchReceipts(broker.url, warmup);
      await publishReadings(broker.url, warmup);
      await waitFor('the warm-up receipted', () => warm.doneAt > 0, 120_000);
      await warm.end();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const g of gateways) g.child.kill('SIGSTOP');
    await publishReadings(broker.url, boxes);

    const receipts = await watchReceipts(broker.url, boxes);

    // The reference just before and just after: the load of a shared machine drifts.
    const bareBefore = reference();
    const gatewaysBefore = gateways.reduce((sum, g) => sum + cpuTicks(g.child.pid!), 0);
    const coresBefore = coreTimes();
    const serversBefore = { broker: treeTicks(broker.pid()), database: treeTicks(db ? postgres?.pid : undefined) };
    const start = performance.now();
    for (const g of gateways) g.child.kill('SIGCONT');
    await waitFor('every reading receipted', () => receipts.doneAt > 0, 600_000).catch((err) => {
      throw new Error(`${label}: ${err.message}: receipted ${[...receipts.covered.values()].join(', ')}; gateway said:\n${gateways.map((g) => g.stderr.slice(-2000) + g.stdout).join('\n')}`);
    });
    const { doneAt } = receipts;
    const coresAfter = coreTimes();
    const serversAfter = { broker: treeTicks(broker.pid()), database: treeTicks(db ? postgres?.pid : undefined) };
    const cpuSeconds = (gateways.reduce((sum, g) => sum + cpuTicks(g.child.pid!), 0) - gatewaysBefore) / CLOCK_TICKS;
    await receipts.end();
    await stopGateways(gateways);
    const bare = (bareBefore + reference()) / 2;
    const summaries = gateways.map((g) => JSON.parse(g.stdout.trim().split('\n').at(-1) ?? '{}') as { accepted?: number; duplicate?: number });
    const total = boxes.reduce((sum, b) => sum + b.messages.length, 0);
    const us = (ticks: number) => ticks / CLOCK_TICKS * 1e6 / total;
    return {
      label, processes, warmTotal,
      accepted: summaries.reduce((sum, x) => sum + (x.accepted ?? 0), 0),
      split: summaries.map((x) => x.accepted ?? 0),
      duplicates: summaries.reduce((sum, x) => sum + (x.duplicate ?? 0), 0),
      perReadingUs: { gateways: cpuSeconds * 1e6 / total, broker: us(serversAfter.broker - serversBefore.broker), database: us(serversAfter.database - serversBefore.database) },
      wallPerS: total / ((doneAt - start) / 1000),
      perCorePerS: total / cpuSeconds,
      bare,
      cores: coresAfter.map((c, i) => (c.busy - coresBefore[i]!.busy) / Math.max(1, c.total - coresBefore[i]!.total)),
    };
  } finally {
    await stopGateways(gateways);
    await broker.stop();
  }
}

async function stopGateways(gateways: Gateway[]): Promise<void> {
  for (const g of gateways) {
    if (g.child.exitCode !== null || g.child.signalCode !== null) continue;
    g.child.kill('SIGCONT');
    g.child.kill('SIGTERM');
  }
  await Promise.all(gateways.map((g) => g.exited));
}

let postgres: Postgres | undefined;
try {
  const boxes = await makeReadings(count, 'box');
  const warmup = await makeReadings(warmupCount * MAX_PROCESSES, 'warm');
  const total = boxes.reduce((sum, b) => sum + b.messages.length, 0);
  // The reference: bare verification of one of these messages by node:crypto, on one core.
  const sample = parseSign1(boxes[0]!.messages[0]!.bytes);
  const toBeVerified = sigStructure(sample.protectedBytes, sample.payload);
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(loadDeviceKey(join(work, 'box-0'), { create: false }).identity.publicKey).toString('base64url') }, format: 'jwk' });
  const reference = () => bareVerifyPerCpuSecond(() => verify(null, toBeVerified, publicKey, sample.signature), values.quick ? 3 : 5, values.quick ? 50 : 200);
  const runs: Run[] = values['postgres-only'] ? [] : [await run('SQLite, 1 gateway', boxes, warmup, 1, undefined, reference)];
  if (postgresBin()) {
    // Durable like the SQLite store (fsync on commit): the same promise to the boxes.
    postgres = await startPostgres({ durable: true });
    runs.push(await run('PostgreSQL, 1 gateway', boxes, warmup, 1, await postgres.createDatabase(), reference));
    runs.push(await run('PostgreSQL, 2 gateways', boxes, warmup, 2, await postgres.createDatabase(), reference));
  }
  console.log(`${total} readings of ${deviceCount} boxes, ${boxes[0]!.messages[0]!.bytes.length} B each, after a warm-up of ${warmupCount} per gateway; bare verifications per core-second (node:crypto, measured around each run): ${runs.map((r) => Math.round(r.bare)).join(', ')}\n`);
  for (const r of runs) {
    const cores = r.cores.map((c, i) => `cpu${i} ${(c * 100).toFixed(0)} %`).join(', ');
    console.log(`${r.label.padEnd(24)} ${Math.round(r.wallPerS).toString().padStart(7)} readings/s wall  ${Math.round(r.perCorePerS).toString().padStart(7)} per gateway core-second (${(r.perCorePerS / r.bare).toFixed(2)}x bare verify)  cores busy: ${cores}  accepted ${r.accepted - r.warmTotal}/${total}${r.processes > 1 ? ` (${r.split.join(' + ')} with the warm-up's ${r.warmTotal})` : ''}${r.duplicates ? `, ${r.duplicates} duplicates` : ''}`);
  }
  console.log('\nCPU per reading (µs): gateways / broker / database / bare verify');
  for (const r of runs) {
    const { gateways, broker, database } = r.perReadingUs;
    console.log(`${r.label.padEnd(24)} ${[gateways, broker, database, 1e6 / r.bare].map((x) => x.toFixed(0).padStart(5)).join(' / ')}`);
  }
  console.log();
  for (const r of runs.filter((x) => x.processes === 1)) {
    const ratio = r.perCorePerS / r.bare;
    console.log(`goal (${r.label}): verified, stored and receipted per core >= 0.50x bare verify: ${ratio.toFixed(2)}x ${ratio >= 0.5 ? 'MET' : 'NOT MET'}`);
  }
  const [one, two] = [runs.find((r) => r.label === 'PostgreSQL, 1 gateway'), runs.find((r) => r.label === 'PostgreSQL, 2 gateways')];
  if (one && two) {
    const scale = two.wallPerS / one.wallPerS;
    // The machine's own ceiling, measured now: bare verification alone in one process, then
    // in two at once. Two gateways cannot scale better than this (less the broker's and the
    // database's share of the cores); on a shared or hyper-threaded machine it is below 2.
    const ms = values.quick ? 500 : 2000;
    const machine = await bareVerifyWall(2, ms, sample.protectedBytes.length + sample.payload.length) / await bareVerifyWall(1, ms, sample.protectedBytes.length + sample.payload.length);
    // What the CPU per reading allows on two otherwise idle cores: one gateway is bound by
    // its own core (the broker and the database fit on the other), two by both cores.
    const cpuBound = 2 * one.perReadingUs.gateways / (two.perReadingUs.gateways + two.perReadingUs.broker + two.perReadingUs.database);
    // With a core for each gateway and the broker and the database on others, each gateway
    // is bound by its own core: two do 2 x one's per reading / theirs.
    const ownCores = 2 * one.perReadingUs.gateways / two.perReadingUs.gateways;
    console.log(`goal (PostgreSQL): 2 gateways >= 1.5x 1 gateway (wall): ${scale.toFixed(2)}x ${scale >= 1.5 ? 'MET' : 'NOT MET'} (${r2(one.cores)} -> ${r2(two.cores)} of the cores busy; bare verify in 2 processes at once: ${machine.toFixed(2)}x 1; from the CPU per reading, on 2 idle cores: ${cpuBound.toFixed(2)}x, with a core for each gateway: ${ownCores.toFixed(2)}x)`);
  } else {
    console.log('PostgreSQL skipped: needs PostgreSQL (apt-get install postgresql)');
  }
} finally {
  await postgres?.stop();
  rmSync(work, { recursive: true, force: true });
}

/**
 * The readings as a fleet sends them: every box in its own order, the boxes interleaved at
 * random (a fixed seed, the same order every run), not one box after the other.
 */
function fleetOrder(boxes: Box[]): { topic: string; bytes: Buffer }[] {
  let seed = 0x2545f491;
  const random = () => ((seed = Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5 | 0) >>> 0) / 2 ** 32;
  const next = boxes.map(() => 0);
  const order: { topic: string; bytes: Buffer }[] = [];
  let left = boxes.filter((b) => b.messages.length > 0).map((_, i) => i);
  while (left.length) {
    const i = left[Math.floor(random() * left.length)]!;
    const box = boxes[i]!;
    order.push({ topic: deviceTopic(box.id, 'data'), bytes: Buffer.from(box.messages[next[i]!++]!.bytes) });
    if (next[i] === box.messages.length) left = left.filter((x) => x !== i);
  }
  return order;
}

/**
 * Bare verifications per second of CPU time (median of batches): CPU time, like the
 * gateways' figure, so that other processes on the shared cores slow neither.
 */
function bareVerifyPerCpuSecond(op: () => unknown, batches: number, minBatchMs: number): number {
  const rates: number[] = [];
  for (let b = 0; b < batches; b++) {
    const start = process.cpuUsage();
    let n = 0;
    let usedMs = 0;
    do {
      for (let i = 0; i < 100; i++) op();
      n += 100;
      const used = process.cpuUsage(start);
      usedMs = (used.user + used.system) / 1000;
    } while (usedMs < minBatchMs);
    rates.push(n / (usedMs / 1000));
  }
  return rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)]!;
}

/**
 * Bare verifications per wall second of `processes` node processes verifying at once, each
 * with a key and a message of `size` bytes of its own.
 */
async function bareVerifyWall(processes: number, ms: number, size: number): Promise<number> {
  const script = `const c = require('node:crypto'); const { publicKey, privateKey } = c.generateKeyPairSync('ed25519');
    const m = Buffer.alloc(${size}, 7); const s = c.sign(null, m, privateKey); let n = 0; const end = Date.now() + ${ms};
    while (Date.now() < end) { for (let i = 0; i < 100; i++) c.verify(null, m, publicKey, s); n += 100; } console.log(n);`;
  const counts = await Promise.all(Array.from({ length: processes }, () => new Promise<number>((resolve, reject) => {
    execFile(process.execPath, ['-e', script], (err, stdout) => (err ? reject(err) : resolve(Number(stdout))));
  })));
  return counts.reduce((a, b) => a + b, 0) / (ms / 1000);
}

function r2(cores: number[]): string {
  return `${(cores.reduce((a, b) => a + b, 0) * 100 / cores.length).toFixed(0)} %`;
}
