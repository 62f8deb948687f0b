// Real boxes in network namespaces, the UDP link on veth pairs, Mosquitto and the
// gateway in the namespace of the box that has the uplink.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { ROOT, runCli, tempDir } from './helpers/cli.ts';
import { startMosquitto, type Broker } from './helpers/mosquitto.ts';
import { makeMesh, meshBoxConfig, netnsUnavailable, type Mesh } from './helpers/netns.ts';
import { deviceId, gatewayKey, inNamespace, queuedSeqs, readings, start, until, type Running } from './helpers/system.ts';
import { verifyStatus } from '../agent/codec/status.ts';

const missing = netnsUnavailable();
if (missing) process.stdout.write(`mesh namespace tests skipped: ${missing}\n`);
const meshTest = missing ? test.skip : test;

const dir = tempDir();
const running: Running[] = [];
const brokers: Broker[] = [];
const meshes: Mesh[] = [];
const launch = (args: string[], ns: string) => {
  const r = start(args, inNamespace(ns));
  running.push(r);
  return r;
};

test.after(async () => {
  for (const r of running) await r.stop('SIGKILL');
  for (const b of brokers) await b.kill();
  for (const m of meshes) m.remove();
  dir.remove();
});

const gatewayDir = (name: string) => join(dir.path, `${name}-gw`);

/** Mosquitto, the gateway and a subscriber for `device` in namespace `ns`. */
async function uplinkSide(ns: string, name: string, device: string) {
  const broker = await startMosquitto({ port: 1883, netns: ns });
  brokers.push(broker);
  const url = 'mqtt://127.0.0.1:1883';
  const gateway = launch(['gateway', '--broker', url, '--state-dir', gatewayDir(name), '--allow-any'], ns);
  const subscriber = launch(['subscribe', '--broker', url, '--device', device, '--json'], ns);
  await until(`gateway in ${ns} connected`, () => /connected/.test(gateway.stderr()), 10_000);
  return { broker, url, gateway, subscriber };
}

async function meshStatus(stateDir: string) {
  const result = await runCli(['mesh', '--json', '--state-dir', stateDir]);
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout.toString());
}

const seqsOf = (subscriber: Running) => [...new Set(readings(subscriber).filter((r) => r.valid).map((r) => r.seq))].sort((a, b) => a - b);

meshTest("a 5-box line: readings of box 4 reach Mosquitto through three relays, verify, and box 4's queue empties on receipts", async () => {
  const mesh = makeMesh(5, [[0, 1], [1, 2], [2, 3], [3, 4]]);
  meshes.push(mesh);
  const line = join(dir.path, 'line');
  const far = join(line, 'box4');
  const device = await deviceId(far);
  const up = await uplinkSide(mesh.ns(0), 'line', device);
  const keys = [await gatewayKey(gatewayDir('line'))];
  // box 4 has 20 readings waiting before the mesh exists
  assert.is((await runCli(['sample', '--count', '20', '--out', '/dev/null', '--state-dir', far])).code, 0);
  for (let i = 0; i < 5; i++) {
    const config = meshBoxConfig(line, `box${i}`, mesh.interfaces(i), keys, i === 0 ? { broker: up.url } : {});
    launch(['run', '--config', config], mesh.ns(i));
  }
  await until('every reading of box 4 at the subscriber', () => seqsOf(up.subscriber).length >= 20, 30_000);
  assert.equal(seqsOf(up.subscriber), Array.from({ length: 20 }, (_, i) => i));
  assert.ok(readings(up.subscriber).every((r) => r.valid && r.chain !== 'broken'), 'every reading verifies, chain unbroken');
  await until("box 4's queue emptied by receipts", async () => (await queuedSeqs(far)).length === 0, 20_000);
  // The uplink box holds receipts: one answers several readings.
  const relay = (await meshStatus(join(line, 'box0'))).relay;
  assert.is(relay.relayed, 20);
  assert.ok(relay.receiptsSent * 2 <= relay.relayed, `${relay.receiptsSent} receipts sent back for ${relay.relayed} readings`);
  const status = await meshStatus(far);
  const route = status.routes.find((r: { selected: boolean; uplink: boolean }) => r.selected && r.uplink);
  assert.ok(route, 'box 4 has a route to an uplink');
  assert.is(status.neighbours.length, 1, 'box 4 hears only box 3');
  assert.ok(route.total >= 4 * 256, `four hops of cost: ${route.total}`);
  const human = (await runCli(['mesh', '--state-dir', far])).stdout.toString();
  assert.match(human, new RegExp(`node ${status.node}  announcing: no  readings via: [0-9a-f]{12}`));
  assert.match(human, /neighbours:\n  [0-9a-f]{12}  udp:\S+ 10\.4\.0\.1  cost \d\.\d\d \(in \d\.\d\d, out \d\.\d\d\)/);
  assert.match(human, /routes:\n  \* [0-9a-f]{12} \(uplink\)  via [0-9a-f]{12} on udp:\S+  metric \d+\.\d\d  seqno \d+/);
  assert.match(human, /\nreceipts: [1-9]\d* accepted, refused: none\n/);
});

meshTest('a 5-box ring: cutting a link on the active path reroutes, and no reading is lost', async () => {
  const mesh = makeMesh(5, [[0, 1], [1, 2], [2, 3], [3, 4], [4, 0]]);
  meshes.push(mesh);
  const ring = join(dir.path, 'ring');
  const origin = join(ring, 'box2');
  const device = await deviceId(origin);
  const up = await uplinkSide(mesh.ns(0), 'ring', device);
  const keys = [await gatewayKey(gatewayDir('ring'))];
  const boxes: Running[] = [];
  for (let i = 0; i < 5; i++) {
    const config = meshBoxConfig(ring, `box${i}`, mesh.interfaces(i), keys, i === 0 ? { broker: up.url } : i === 2 ? { intervalMs: 200 } : {});
    boxes.push(launch(['run', '--config', config], mesh.ns(i)));
  }
  await until('readings of box 2 flowing', () => seqsOf(up.subscriber).length >= 10, 30_000);
  // Box 2 is two hops from box 0 either way round; cut the first hop of the path in use.
  const status = await meshStatus(origin);
  const route = status.routes.find((r: { selected: boolean; uplink: boolean }) => r.selected && r.uplink);
  const nextHop = status.neighbours.find((n: { node: string }) => n.node === route.via);
  const viaBox = mesh.interfaces(2).indexOf(nextHop.link.replace('udp:', '')) === 0 ? 1 : 3;
  mesh.cut(2, viaBox);
  const before = seqsOf(up.subscriber).length;
  await until('readings flowing again the other way round', () => seqsOf(up.subscriber).length >= before + 15, 30_000);
  const after = await meshStatus(origin);
  const rerouted = after.routes.find((r: { selected: boolean; uplink: boolean }) => r.selected && r.uplink);
  assert.is.not(rerouted.via, route.via, 'box 2 routes through its other neighbour');
  // Stop box 2 and let its queue drain: every reading it made arrives, once, verified.
  await boxes[2]!.stop();
  const drained = launch(['run', '--config', join(ring, 'box2.json'), '--interval', '3600000'], mesh.ns(2));
  await until('box 2 drained', async () => (await queuedSeqs(origin)).length === 0, 30_000);
  await drained.stop();
  const seqs = seqsOf(up.subscriber);
  assert.equal(seqs, Array.from({ length: seqs.length }, (_, i) => i), 'every sequence number, none missing');
  assert.ok(readings(up.subscriber).every((r) => r.valid && r.chain !== 'broken'));
});

meshTest('stopping the uplink of box 0 and giving box 2 one moves the traffic to box 2', async () => {
  const mesh = makeMesh(5, [[0, 1], [1, 2], [2, 3], [3, 4]]);
  meshes.push(mesh);
  const home = join(dir.path, 'move');
  const far = join(home, 'box4');
  const device = await deviceId(far);
  const first = await uplinkSide(mesh.ns(0), 'move0', device);
  // The second gateway's key exists before it runs: boxes trust both.
  const keys = [await gatewayKey(gatewayDir('move0')), await gatewayKey(gatewayDir('move2'))];
  for (let i = 0; i < 5; i++) {
    // box 2 is configured with a broker of its own that is not there yet
    const extra = i === 0 ? { broker: first.url } : i === 2 ? { broker: 'mqtt://127.0.0.1:1883' } : i === 4 ? { intervalMs: 300 } : {};
    launch(['run', '--config', meshBoxConfig(home, `box${i}`, mesh.interfaces(i), keys, extra)], mesh.ns(i));
  }
  await until('readings of box 4 at box 0', () => seqsOf(first.subscriber).length >= 5, 30_000);
  await first.broker.stop();
  const second = await uplinkSide(mesh.ns(2), 'move2', device);
  await until('readings of box 4 at box 2', () => seqsOf(second.subscriber).length >= 5, 30_000);
  const status = await meshStatus(far);
  const route = status.routes.find((r: { selected: boolean; uplink: boolean }) => r.selected && r.uplink);
  const box2 = await meshStatus(join(home, 'box2'));
  assert.is(route.dest, box2.node, 'box 4 routes to box 2');
  assert.ok(!status.routes.some((r: { dest: string; total: number; uplink: boolean }) => r.uplink && r.dest !== box2.node && r.total < 0xffff), 'no live route to box 0 as an uplink');
});

/** Statuses published on `device`'s status topic, as seen inside namespace `ns`. */
function watchStatus(ns: string, url: string, device: string) {
  const watcher = start([url, `iop/v1/${device}/status`], { command: ['ip', 'netns', 'exec', ns, process.execPath, join(ROOT, 'test', 'helpers', 'watch-mqtt.ts')] });
  running.push(watcher);
  return () => watcher.stdout().split('\n').filter(Boolean).map((line) => JSON.parse(line.slice(line.indexOf(' ') + 1)) as Record<string, unknown>);
}

meshTest("a mesh-only box's status reaches the broker with \"uplink\": \"mesh\", signed by it; the uplink box marks it offline when it falls silent", async () => {
  const mesh = makeMesh(3, [[0, 1], [1, 2]]);
  meshes.push(mesh);
  const home = join(dir.path, 'status');
  const far = join(home, 'box2');
  const device = await deviceId(far);
  const uplinkBox = await deviceId(join(home, 'box0'));
  const up = await uplinkSide(mesh.ns(0), 'status', device);
  const statuses = watchStatus(mesh.ns(0), up.url, device);
  const keys = [await gatewayKey(gatewayDir('status'))];
  const configs = [0, 1, 2].map((i) => meshBoxConfig(home, `box${i}`, mesh.interfaces(i), keys,
    i === 0 ? { broker: up.url } : i === 2 ? { mesh: { statusEveryMs: 1000 } } : {}));
  for (const i of [0, 1]) launch(['run', '--config', configs[i]!], mesh.ns(i));
  let origin = launch(['run', '--config', configs[2]!], mesh.ns(2));

  await until('the mesh-only box online at the broker', () => statuses().some((s) => s.online === true), 30_000);
  const birth = statuses().find((s) => s.online === true)!;
  assert.is(birth.id, device);
  assert.is(birth.uplink, 'mesh');
  assert.is(birth.ack, 'gateway');
  assert.is(birth.statusEveryS, 1);
  assert.is(birth.publishedBy, uplinkBox, 'published by the uplink box');
  const signed = verifyStatus(new Uint8Array(Buffer.from(birth.signed as string, 'base64url')));
  assert.ok(signed.valid, 'the signed original verifies');
  assert.is(signed.device, device, 'signed by the mesh-only box itself');
  const { publishedBy: _p, signed: _s, ...fields } = birth;
  assert.equal(signed.status, fields, 'the published fields are the signed ones');

  // A clean stop: the box says so itself, signed.
  assert.is((await origin.stop()).code, 0);
  await until('a signed offline status', () => statuses().at(-1)?.online === false, 10_000);
  const goodbye = statuses().at(-1)!;
  assert.ok(goodbye.signed && verifyStatus(new Uint8Array(Buffer.from(goodbye.signed as string, 'base64url'))).valid);
  assert.is(goodbye.uplink, 'mesh');

  // Killed: silent for three intervals, it is marked offline by the uplink box, in its own name.
  origin = launch(['run', '--config', configs[2]!], mesh.ns(2));
  await until('online again', () => statuses().at(-1)?.online === true, 30_000);
  await origin.stop('SIGKILL');
  await until('offline by the uplink box', () => statuses().at(-1)?.online === false, 15_000);
  const will = statuses().at(-1)!;
  assert.is(will.publishedBy, uplinkBox);
  assert.is(will.signed, undefined, 'not signed by the box: stated by the uplink box on its behalf');
  assert.match(will.reason as string, /no status through the mesh for 3 s/);
  const relayed = (await meshStatus(join(home, 'box0'))).status.relayed;
  assert.is(relayed.silent, 1);
  assert.is(relayed.rejected, 0);
});

test.run();
