// What gateways with device affinity subscribe to (agent/gateway/data-subscriptions.ts):
// each gateway receives the readings of the devices it owns and no others (learnt from
// the boxes' retained statuses), takes every device's when alone, drops the device
// subscriptions its persistent session kept from an earlier run, and after one is killed
// -9 the others take its devices, the readings that reached no gateway meanwhile sent again
// by their boxes: each stored once. Real Mosquitto and PostgreSQL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import { Gateway, type GatewayOptions } from '../agent/gateway/gateway.ts';
import { DeviceRegistry } from '../agent/gateway/registry.ts';
import { openPostgresStore } from '../agent/gateway/store-postgres.ts';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import type { Logger } from '../agent/log.ts';
import { signNext, type SignedMessage } from '../agent/signer.ts';
import { deviceTopic } from '../agent/uplink/topics.ts';
import { postgresBin, startPostgres, type Postgres } from '../harness/postgres.ts';
import { testIf } from './helpers/requires.ts';
import { boxConfig, deviceId, gatewayKey, queued, sleep, testDeployment, until } from './helpers/system.ts';

const { dir, broker, launch } = testDeployment(test);
const NO_POSTGRES = postgresBin() ? undefined : 'needs PostgreSQL (apt-get install postgresql)';
let postgres: Postgres | undefined;
test.after(async () => postgres?.stop());

const LEASE_MS = 1000;

interface Box { id: string; messages: SignedMessage[] }

async function boxes(prefix: string, count: number, readings: number): Promise<Box[]> {
  const made: Box[] = [];
  for (let b = 0; b < count; b++) {
    const { key, identity } = loadDeviceKey(join(dir.path, `${prefix}-${b}`), { create: true });
    const messages: SignedMessage[] = [];
    for (let i = 0; i < readings; i++) {
      const pack = { records: [{ n: 'temperature', u: 'Cel', v: 20 + (i % 10), t: Date.now() / 1000 - readings + i }] };
      messages.push(await signNext(key, identity, messages.at(-1), encodeSenmlPack(pack as never)));
    }
    made.push({ id: identity.id, messages });
  }
  return made;
}

/** A logger that keeps the lines (the gateway says what it takes). */
function keptLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = { lines, debug: () => undefined, info: (m: string) => void lines.push(m), warn: (m: string) => void lines.push(m), error: (m: string) => void lines.push(m), child: () => log };
  return log;
}

/** What the gateway said it takes last: a number of devices, 'every', or undefined (also while a subscription it gave up still brings readings). */
function taking(log: { lines: string[] }): number | 'every' | undefined {
  const line = log.lines.filter((l) => l.startsWith('taking the readings of')).at(-1);
  const match = line && /^taking the readings of (every device|(\d+) devices)$/.exec(line);
  if (!match) return undefined;
  return match[2] === undefined ? 'every' : Number(match[2]);
}

/** The devices a gateway said it takes per device (0 while it takes every device's or is in a grace period). */
const devicesTaken = (log: { lines: string[] }) => {
  const said = taking(log);
  return typeof said === 'number' ? said : 0;
};

/** A gateway on the database `url` (device affinity unless `options.affinity` is false), started. */
async function gateway(url: string, name: string, log: Logger, options: Partial<GatewayOptions> = {}): Promise<Gateway> {
  const gwDir = join(dir.path, 'subs-gw');
  const { key, identity } = loadDeviceKey(gwDir, { create: true });
  const g = new Gateway({
    session: { url: broker.url, reconnectMinMs: 100, reconnectMaxMs: 1000, keepaliveS: 30 },
    sessionName: name, stateDir: gwDir, key, identity, gapTimeoutMs: 60_000, share: true, affinityLeaseMs: LEASE_MS, log,
    store: options.store ?? await openPostgresStore(url, { gapTimeoutMs: 60_000, splitBatches: options.affinity === false }),
    registry: new DeviceRegistry({ allow: [], allowAny: true }),
    ...options,
  });
  g.start();
  return g;
}

async function publishAll(messages: { topic: string; bytes: Uint8Array }[], options: { retain?: boolean } = {}): Promise<void> {
  const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  for (const m of messages) await publisher.publishAsync(m.topic, Buffer.from(m.bytes), { qos: 1, retain: options.retain ?? false });
  await publisher.endAsync();
}

/** Clears the boxes' retained statuses: the next test's gateways would learn of these devices too. */
const clearStatuses = (ids: string[]) => publishAll(ids.map((id) => ({ topic: deviceTopic(id, 'status'), bytes: new Uint8Array(0) })), { retain: true });
const statuses = (made: Box[]) => made.map((b) => ({ topic: deviceTopic(b.id, 'status'), bytes: Buffer.from(JSON.stringify({ online: true, id: b.id })) }));
const readings = (made: Box[], from: number, to: number) => made.flatMap((b) => b.messages.slice(from, to).map((m) => ({ topic: deviceTopic(b.id, 'data'), bytes: m.bytes })));

async function query<T>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

async function storedOnce(url: string, made: Box[], count: number): Promise<void> {
  const rows = await query<{ device: string; n: number; seqs: number; high: number }>(url, 'SELECT device, count(*)::int AS n, count(DISTINCT seq)::int AS seqs, max(seq)::int AS high FROM readings GROUP BY device');
  for (const b of made) assert.equal(rows.find((r) => r.device === b.id), { device: b.id, n: count, seqs: count, high: count - 1 }, b.id);
}

/**
 * A new database, boxes whose retained statuses are published, and two gateways on it
 * (sessions `<prefix>-a`, `<prefix>-b`), once both subscribed to the devices they own.
 */
async function twoGateways(prefix: string, count: number, perBox: number) {
  postgres ??= await startPostgres();
  const url = await postgres.createDatabase();
  const made = await boxes(prefix, count, perBox);
  // The boxes' retained statuses: how the gateways learn of them.
  await publishAll(statuses(made), { retain: true });
  const logs = { a: keptLog(), b: keptLog() };
  const a = await gateway(url, `${prefix}-a`, logs.a);
  const b = await gateway(url, `${prefix}-b`, logs.b);
  await until('both gateways subscribed to their devices', () => taking(logs.a) !== 'every' && taking(logs.b) !== 'every' && devicesTaken(logs.a) + devicesTaken(logs.b) === made.length, 20_000, 20).catch((err) => {
    throw new Error(`${err.message}\na: ${logs.a.lines.join('\n')}\nb: ${logs.b.lines.join('\n')}`);
  });
  return { url, made, logs, a, b };
}

testIf(NO_POSTGRES, 'two gateways: each receives the readings of the devices it owns and no others; alone, one takes every device\'s', async () => {
  const { url, made, logs, a, b } = await twoGateways('subs', 6, 60);
  try {
    await publishAll(readings(made, 0, 30));
    await until('the readings stored', () => a.counters.accepted + b.counters.accepted === made.length * 30, 30_000, 50);
    const ordinals = new Map((await query<{ device: string; ordinal: number }>(url, 'SELECT device, ordinal::int AS ordinal FROM device_ordinals')).map((r) => [r.device, r.ordinal]));
    const owners = made.map((box) => ['subs-a', 'subs-b'][ordinals.get(box.id)! % 2]);
    // A reading of another gateway's device would count as accepted or as a duplicate here.
    assert.is(a.counters.accepted, owners.filter((o) => o === 'subs-a').length * 30);
    assert.is(b.counters.accepted, owners.filter((o) => o === 'subs-b').length * 30);
    assert.is(a.counters.duplicate + b.counters.duplicate, 0, 'no reading reached both');
    assert.is(a.counters.staleSubscriptions + b.counters.staleSubscriptions, 0);
    assert.is(taking(logs.a), owners.filter((o) => o === 'subs-a').length);

    // b leaves: a takes every device's readings (after its grace period, b's subscriptions gone).
    const before = a.counters.accepted;
    await b.stop();
    await until('a to take every device', () => taking(logs.a) === 'every', 10_000, 20);
    await publishAll(readings(made, 30, 60));
    await until('the rest stored by a', () => a.counters.accepted === before + made.length * 30, 30_000, 50);
    assert.is(a.counters.duplicate, 0);
    await storedOnce(url, made, 60);
  } finally {
    await clearStatuses(made.map((x) => x.id));
    await a.stop();
    if (taking(logs.a) !== 'every') await b.stop();
  }
});

testIf(NO_POSTGRES, 'a persistent session\'s device subscriptions from an earlier run, no longer wanted, are dropped at their first reading: later readings come once', async () => {
  const { url, made, logs, a, b } = await twoGateways('stale', 4, 20);
  const ownedByA = taking(logs.a) as number;
  assert.ok(ownedByA > 0);
  await b.stop();
  // Killed, in effect: a's session keeps its device subscriptions (no grace, no unsubscribing).
  (a as unknown as { subscriptions: { stop(): void } }).subscriptions.stop();
  await a.stop();
  // Back alone, a takes every device's readings (one filter); its old device filters are stale.
  const log = keptLog();
  const again = await gateway(url, 'stale-a', log);
  try {
    await until('a back, taking every device', () => taking(log) === 'every', 10_000, 20);
    await publishAll(readings(made, 0, 1));
    await until('the first readings stored', () => again.counters.accepted === made.length, 10_000, 20);
    await until('the stale subscriptions dropped', () => again.counters.staleSubscriptions === ownedByA, 10_000, 20);
    const duplicates = again.counters.duplicate;
    assert.ok(duplicates <= ownedByA, `${duplicates} duplicates`);
    await sleep(200); // the UNSUBSCRIBEs answered
    await publishAll(readings(made, 1, 20));
    await until('the rest stored', () => again.counters.accepted === made.length * 20, 20_000, 20);
    assert.is(again.counters.duplicate, duplicates, 'a dropped subscription brought a reading again');
    await storedOnce(url, made, 20);
  } finally {
    await clearStatuses(made.map((x) => x.id));
    await again.stop();
  }
});

testIf(NO_POSTGRES, 'a persistent session switched from device affinity to the shared subscription (--no-affinity) drops the device subscriptions it kept: each reading taken once', async () => {
  const { url, made, logs, a, b } = await twoGateways('back', 4, 20);
  const ownedByA = taking(logs.a) as number;
  await b.stop();
  (a as unknown as { subscriptions: { stop(): void } }).subscriptions.stop(); // its device subscriptions stay
  await a.stop();
  const log = keptLog();
  const shared = await gateway(url, 'back-a', log, { affinity: false });
  try {
    await until('the gateway connected', () => log.lines.some((l) => l.startsWith('connected to')), 10_000, 20);
    await publishAll(readings(made, 0, 20));
    await until('every reading stored', () => shared.counters.accepted === made.length * 20, 20_000, 20);
    assert.is(shared.counters.staleSubscriptions, ownedByA);
    assert.is(shared.counters.duplicate, 0, 'a device subscription kept from the run with affinity brought readings twice');
    await storedOnce(url, made, 20);
  } finally {
    await clearStatuses(made.map((x) => x.id));
    await shared.stop();
  }
});

testIf(NO_POSTGRES, 'a gateway that cannot read the leases for longer than a lease subscribes to every device\'s readings and takes them all; read again, its own devices\' only', async () => {
  postgres ??= await startPostgres();
  const url = await postgres.createDatabase();
  const made = await boxes('fallback', 4, 20);
  await publishAll(statuses(made), { retain: true });
  // The leases as the database would give them: this gateway and another (which never takes anything here).
  let reachable = true;
  const membership = {
    open: async () => undefined,
    heartbeat: async () => {
      if (!reachable) throw new Error('database down');
      return ['fb-a', 'fb-b'];
    },
    ordinals: async () => new Map<string, number>(),
    ordinalsOf: async (devices: string[]) => new Map(devices.map((device) => [device, made.findIndex((b) => b.id === device) + 1] as const)),
    leave: async () => undefined,
    close: async () => undefined,
  };
  const store = await openPostgresStore(url, { gapTimeoutMs: 60_000 });
  const log = keptLog();
  const g = await gateway(url, 'fb-a', log, { store: Object.assign(Object.create(store) as typeof store, { membership: () => membership }) });
  try {
    await until('its own devices subscribed', () => taking(log) === 2, 10_000, 20);
    reachable = false;
    await until('every device\'s readings subscribed', () => taking(log) === 'every', 10_000, 20);
    await publishAll(readings(made, 0, 10));
    await until('every reading taken', () => g.counters.accepted === made.length * 10, 10_000, 20);
    reachable = true;
    await until('its own devices only again', () => taking(log) === 2, 10_000, 20);
    await publishAll(readings(made, 10, 20));
    // (within the grace period the one filter may still bring the others' readings: none after)
    await until('its own devices\' readings taken', () => g.counters.accepted === made.length * 10 + 2 * 10, 10_000, 20);
    await sleep(300);
    assert.is(g.counters.accepted, made.length * 10 + 2 * 10, 'the other gateway\'s devices\' readings reached this one');
  } finally {
    await clearStatuses(made.map((x) => x.id));
    await g.stop();
  }
});

testIf(NO_POSTGRES, 'a gateway killed -9: when its lease runs out the other takes its devices, and what reached no gateway meanwhile its boxes send again: each reading stored once', async () => {
  postgres ??= await startPostgres();
  const url = await postgres.createDatabase();
  const gwDir = join(dir.path, 'kill-gw');
  const key = await gatewayKey(gwDir);
  // No persistent sessions: while the dead gateway's lease runs (5 s), its devices' readings reach nobody.
  const start = () => launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any', '--db', url, '--gap-timeout', '60000']);
  const gateways = { a: start(), b: start() };
  const takes = (g: { stderr(): string }) => g.stderr().split('\n').filter((l) => l.includes('taking the readings of')).at(-1) ?? '';
  await until('the gateways sharing the devices', () => Object.values(gateways).every((g) => /taking the readings of 0 devices$/.test(takes(g))), 20_000);
  const names = ['kill-box-1', 'kill-box-2', 'kill-box-3', 'kill-box-4'];
  const agents = names.map((name) => launch(['run', '--config', boxConfig(dir.path, name, { gatewayKeys: [key] }), '--broker', broker.url]));
  await until('every box\'s device taken', () => Object.values(gateways).reduce((sum, g) => sum + Number(/(\d+) devices$/.exec(takes(g))?.[1] ?? 0), 0) === names.length, 20_000);
  await sleep(2000);
  const victim = Number(/(\d+) devices$/.exec(takes(gateways.a))?.[1]) > 0 ? 'a' : 'b';
  const survivor = victim === 'a' ? 'b' : 'a';
  await gateways[victim].stop('SIGKILL');
  await until('the survivor to take every device', () => /taking the readings of every device$/.test(takes(gateways[survivor])), 20_000);
  await sleep(3000);
  for (const agent of agents) assert.is((await agent.stop()).code, 0);
  // Sent again by the boxes, what the dead gateway's devices published while its lease ran.
  const resent = agents.map((agent) => agent.stderr()).join('\n');
  assert.match(resent, /no receipt for seq \d+\.\.\d+ within \d+ ms: publishing/);
  const drain = names.map((name) => launch(['run', '--config', boxConfig(dir.path, name, { gatewayKeys: [key] }), '--broker', broker.url, '--interval', '86400000']));
  await until('every box queue drained', async () => {
    for (const name of names) if ((await queued(join(dir.path, name))) > 0) return false;
    return true;
  }, 60_000, 500);
  for (const agent of drain) assert.is((await agent.stop()).code, 0);
  const ids = await Promise.all(names.map((name) => deviceId(join(dir.path, name))));
  const rows = await query<{ device: string; n: number; seqs: number; low: number; high: number }>(url, 'SELECT device, count(*)::int AS n, count(DISTINCT seq)::int AS seqs, min(seq)::int AS low, max(seq)::int AS high FROM readings GROUP BY device');
  for (const id of ids) {
    const held = rows.find((r) => r.device === id)!;
    assert.ok(held.high > 20, `${id}: ${held.high + 1} readings`);
    assert.equal(held, { device: id, n: held.high + 1, seqs: held.high + 1, low: 0, high: held.high }, `${id}: every reading stored once`);
  }
  await gateways[survivor].stop();
  await clearStatuses(ids);
});

test.run();
