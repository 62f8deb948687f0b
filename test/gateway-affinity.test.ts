// Device affinity between gateways on one PostgreSQL database (agent/gateway/affinity.ts):
// the owner of each device, the gateways' leases (joining, leaving, dying), and two
// gateway processes on a real Mosquitto where each device's readings are all taken by its
// owner (what each subscribes to: gateway-subscriptions.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { DeviceAffinity, rendezvousOwner } from '../agent/gateway/affinity.ts';
import { PostgresMembership } from '../agent/gateway/membership-postgres.ts';
import { openPostgresStore } from '../agent/gateway/store-postgres.ts';
import { silentLogger } from '../agent/log.ts';
import { postgresBin, startPostgres, type Postgres } from '../harness/postgres.ts';
import { runCli } from './helpers/cli.ts';
import { testIf } from './helpers/requires.ts';
import { boxConfig, deviceId, gatewayKey, queued, sleep, testDeployment, until } from './helpers/system.ts';

const { dir, broker, launch } = testDeployment(test);
const NO_POSTGRES = postgresBin() ? undefined : 'needs PostgreSQL (apt-get install postgresql)';
let postgres: Postgres | undefined;
test.after(async () => postgres?.stop());

/** A new database, migrated (the gateways' table is schema version 4). */
async function database(): Promise<string> {
  const url = await (postgres ??= await startPostgres()).createDatabase();
  await (await openPostgresStore(url, { gapTimeoutMs: 1000 })).close();
  return url;
}

async function ordinalsIn(url: string): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query('SELECT device, ordinal::int AS ordinal FROM device_ordinals');
  await client.end();
  return new Map((rows as { device: string; ordinal: number }[]).map((r) => [r.device, r.ordinal]));
}

const devices = Array.from({ length: 200 }, (_, i) => `dev${'abcdefghijklmnopqrstuvwxyz'[i % 26]}${'abcdefghijklmnopqrstuvwxyz'[Math.floor(i / 26)]}`);

/** Clears the boxes' retained statuses: the next test's gateways would learn of these devices too. */
async function clearStatuses(url: string, ids: string[]): Promise<void> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5 });
  for (const id of ids) await client.publishAsync(`iop/v1/${id}/status`, Buffer.alloc(0), { qos: 1, retain: true });
  await client.endAsync();
}

test('before its ordinal is known, the owner of a device is the same whatever the order of the gateways; a gateway joining takes devices only for itself', () => {
  const two = ['gw-a', 'gw-b'];
  const three = ['gw-a', 'gw-b', 'gw-c'];
  let moved = 0;
  const counts = new Map<string, number>();
  for (const device of devices) {
    const before = rendezvousOwner(device, two)!;
    assert.is(rendezvousOwner(device, [...two].reverse()), before);
    const after = rendezvousOwner(device, three)!;
    assert.is(rendezvousOwner(device, [...three].reverse()), after);
    if (after !== before) {
      assert.is(after, 'gw-c', `${device} moved from ${before} to ${after}, not to the gateway that joined`);
      moved++;
    }
    counts.set(before, (counts.get(before) ?? 0) + 1);
  }
  assert.ok(moved > 30 && moved < 110, `${moved} of 200 devices moved to the third gateway`);
  assert.ok(counts.get('gw-a')! > 60 && counts.get('gw-b')! > 60, `split ${[...counts.values()].join('/')}`);
  assert.is(rendezvousOwner('devaa', []), undefined);
});

testIf(NO_POSTGRES, 'gateways learn at once of one joining and leaving (not at the next heartbeat), and take over a dead one\'s devices when its lease runs out', async () => {
  const url = await database();
  // Heartbeats every 12 s: anything learnt within a few seconds came by notification.
  const slow = (name: string) => new DeviceAffinity({ name, membership: new PostgresMembership(url), leaseMs: 60_000, alive: () => true, log: silentLogger });
  const a = slow('gw-a');
  const b = slow('gw-b');
  await a.start();
  assert.equal(a.members, ['gw-a']);
  assert.is(a.ownerOf(devices[0]!), 'gw-a', 'alone, a gateway owns every device');
  await b.start();
  await until('gw-a to learn of gw-b', () => a.members.length === 2, 3000, 20);
  assert.equal(b.members, ['gw-a', 'gw-b']);
  // Devices first seen: no owner until their ordinals are made (the gateway waits for them).
  for (const device of devices) assert.is(a.ownerOf(device), undefined, device);
  for (const device of devices) assert.is(b.ownerOf(device), undefined, device);
  await Promise.all(devices.map((device) => a.learnt(device)));
  // Then by ordinal (made by whichever asked first), in turn: an even split, the same in both.
  let ordinals = new Map<string, number>();
  await until('every device\'s ordinal made', async () => (ordinals = await ordinalsIn(url)).size === devices.length, 10_000, 50);
  assert.equal([...ordinals.values()].sort((x, y) => x - y), devices.map((_, i) => i + 1));
  const byOrdinal = (device: string) => ['gw-a', 'gw-b'][ordinals.get(device)! % 2];
  await until('the ordinals known', () => devices.every((device) => a.ownerOf(device) === byOrdinal(device) && b.ownerOf(device) === byOrdinal(device)), 5000, 20);
  assert.is(devices.filter((device) => a.ownerOf(device) === 'gw-a').length, devices.length / 2);
  await b.stop();
  await until('gw-a to learn that gw-b left', () => a.members.length === 1, 3000, 20);
  for (const device of devices) assert.is(a.ownerOf(device), 'gw-a');
  await a.stop();

  // A gateway that dies says nothing: its lease runs out (a short one here).
  const quick = (name: string, membership: PostgresMembership) => new DeviceAffinity({ name, membership, leaseMs: 600, alive: () => true, log: silentLogger });
  const c = quick('gw-c', new PostgresMembership(url));
  const dying = new PostgresMembership(url);
  const d = quick('gw-d', dying);
  await c.start();
  await d.start();
  await until('gw-c to learn of gw-d', () => c.members.length === 2, 3000, 20);
  // Killed: no more heartbeats, no leave (its connections simply end).
  (d as unknown as { timer: NodeJS.Timeout }).timer.close();
  await dying.close();
  await until('gw-c to take over gw-d\'s devices', () => devices.every((device) => c.ownerOf(device) === 'gw-c'), 5000, 20);
  assert.equal(c.members, ['gw-c']);
  await c.stop();
});

test('a gateway that cannot read the leases for longer than a lease takes every device itself; a new device waits for its ordinal only so long', async () => {
  let reachable = true;
  let gateways = ['gw-a', 'gw-b'];
  const membership = {
    heartbeat: async () => {
      if (!reachable) throw new Error('database down');
      return gateways;
    },
    open: async () => undefined,
    ordinals: async () => new Map(devices.map((device, i) => [device, i + 1])),
    ordinalsOf: () => new Promise<Map<string, number>>(() => undefined), // never answers
    leave: async () => undefined,
    close: async () => undefined,
  };
  const a = new DeviceAffinity({ name: 'gw-a', membership, leaseMs: 300, alive: () => true, log: silentLogger });
  await a.start();
  const theirs = devices.filter((device) => a.ownerOf(device) === 'gw-b');
  assert.ok(theirs.length > 0);
  assert.is(a.view(), 'devices', 'it subscribes to the readings of its own devices');
  assert.equal(a.owned().sort(), devices.filter((device) => !theirs.includes(device)).sort());
  reachable = false;
  await sleep(500);
  for (const device of theirs) assert.is(a.ownerOf(device), 'gw-a', 'a stale view of the gateways is not trusted');
  assert.is(a.view(), 'all', 'it subscribes to every device\'s readings');
  reachable = true;
  gateways = ['gw-a', 'gw-b'];
  await until('the leases read again', () => a.ownerOf(theirs[0]!) === 'gw-b', 2000, 20);
  assert.is(a.view(), 'devices');
  // A new device whose ordinal the database does not give: its message waits at most
  // ORDINAL_WAIT_MS, then the rendezvous choice stands in.
  assert.is(a.ownerOf('newdevice'), undefined);
  const waited = performance.now();
  await a.learnt('newdevice');
  assert.ok(performance.now() - waited < 3000);
  assert.is(a.ownerOf('newdevice'), rendezvousOwner('newdevice', ['gw-a', 'gw-b']));
  await a.stop();
});

testIf(NO_POSTGRES, 'two gateways on PostgreSQL: the devices split evenly, every reading of a device taken by the gateway owning it, each stored once', async () => {
  const url = await database();
  const gwDir = join(dir.path, 'affinity-gw');
  const key = await gatewayKey(gwDir);
  const gateway = (name: string) => launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any', '--db', url, '--session', name]);
  const gateways = { 'aff-a': gateway('aff-a'), 'aff-b': gateway('aff-b') };
  await until('both gateways to know each other', () => Object.values(gateways).every((g) => /gateways sharing the devices: aff-a, aff-b\n/.test(g.stderr())), 20_000);
  // Each subscribed to no device yet (the one that was alone for a moment no longer to every device's readings).
  const taking = (g: { stderr(): string }) => g.stderr().split('\n').filter((l) => l.includes('taking the readings of')).at(-1) ?? '';
  await until('both gateways to take their devices only', () => Object.values(gateways).every((g) => /taking the readings of 0 devices$/.test(taking(g))), 20_000);
  const boxes = ['aff-box-1', 'aff-box-2', 'aff-box-3', 'aff-box-4'];
  const perBox = 150;
  for (const name of boxes) {
    const sample = await runCli(['sample', '--count', String(perBox), '--out', '/dev/null', '--state-dir', join(dir.path, name)]);
    assert.is(sample.code, 0, sample.stderr);
  }
  const agents = boxes.map((name) => launch(['run', '--config', boxConfig(dir.path, name, { gatewayKeys: [key] }), '--broker', broker.url, '--interval', '86400000']));
  await until('every queue drained', async () => {
    for (const name of boxes) if ((await queued(join(dir.path, name))) > 0) return false;
    return true;
  }, 60_000, 500);
  for (const agent of agents) assert.is((await agent.stop()).code, 0);
  const stats: Record<string, { accepted: number; duplicate: number; staleSubscriptions: number }> = {};
  for (const [name, running] of Object.entries(gateways)) stats[name] = JSON.parse((await running.stop()).stdout.toString());
  // Each gateway took exactly the readings of the devices it owns by ordinal: two each.
  const ids = await Promise.all(boxes.map((name) => deviceId(join(dir.path, name))));
  const ordinals = await ordinalsIn(url);
  for (const name of Object.keys(gateways)) {
    const owned = ids.filter((id) => Object.keys(gateways)[ordinals.get(id)! % 2] === name).length;
    assert.is(owned, 2);
    assert.is(stats[name]!.accepted, owned * perBox, `${name} accepted ${stats[name]!.accepted}, owns ${owned} of ${ids.length} devices`);
    assert.is(stats[name]!.staleSubscriptions, 0);
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (const id of ids) {
    const { rows } = await client.query('SELECT count(*)::int AS n, count(DISTINCT seq)::int AS seqs, min(seq)::int AS low, max(seq)::int AS high FROM readings WHERE device = $1', [id]);
    assert.equal(rows[0], { n: perBox, seqs: perBox, low: 0, high: perBox - 1 });
  }
  const { rows } = await client.query('SELECT count(*)::int AS n FROM gateways WHERE expires > now()');
  assert.is((rows[0] as { n: number }).n, 0, 'a gateway stopping gives its lease up');
  await client.end();
  await clearStatuses(broker.url, ids);
});

testIf(NO_POSTGRES, 'a persistent session switched from the shared subscription to device affinity gets each reading once', async () => {
  const url = await database();
  const gwDir = join(dir.path, 'switch-gw');
  const key = await gatewayKey(gwDir);
  const args = ['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any', '--db', url, '--session', 'switch-gw'];
  // First without affinity: the session subscribes through the shared subscription.
  const shared = launch([...args, '--no-affinity']);
  await until('the shared gateway connected', () => /connected to/.test(shared.stderr()), 20_000);
  await shared.stop();
  const gateway = launch(args);
  await until('the gateway with affinity connected', () => /gateways sharing the devices: switch-gw\n/.test(gateway.stderr()), 20_000);
  const box = 'switch-box';
  const sample = await runCli(['sample', '--count', '40', '--out', '/dev/null', '--state-dir', join(dir.path, box)]);
  assert.is(sample.code, 0, sample.stderr);
  const agent = launch(['run', '--config', boxConfig(dir.path, box, { gatewayKeys: [key] }), '--broker', broker.url, '--interval', '86400000']);
  await until('the queue drained', async () => (await queued(join(dir.path, box))) === 0, 60_000, 300);
  assert.is((await agent.stop()).code, 0);
  const stats = JSON.parse((await gateway.stop()).stdout.toString());
  await clearStatuses(broker.url, [await deviceId(join(dir.path, box))]);
  assert.is(stats.accepted, 40);
  assert.is(stats.duplicate, 0, 'the shared subscription the session kept would bring each reading a second time');
});

test.run();
