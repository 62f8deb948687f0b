// Real boxes in network namespaces, the UDP link on veth pairs, Mosquitto and the
// gateway in the namespace of the box that has the uplink.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { runCli, tempDir } from './helpers/cli.ts';
import { startMosquitto, type Broker } from './helpers/mosquitto.ts';
import { makeMesh, meshBoxConfig, type Mesh } from './helpers/netns.ts';
import { deviceId, gatewayKey, inNamespace, queuedSeqs, readings, start, until, type Running } from './helpers/system.ts';

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

test("a 5-box line: readings of box 4 reach Mosquitto through three relays, verify, and box 4's queue empties on receipts", async () => {
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
});

test('a 5-box ring: cutting a link on the active path reroutes, and no reading is lost', async () => {
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

test('stopping the uplink of box 0 and giving box 2 one moves the traffic to box 2', async () => {
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

test.run();
