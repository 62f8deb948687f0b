// Five `iop-agent run` boxes in a line on emulated radios (RNodes and plain KISS TNCs on
// socat ptys, joined through the simulated LoRa medium), one with Mosquitto and the
// gateway: the far box's readings arrive and verify, and pulling the middle box's radio
// mid-run and putting it back loses none. Then two boxes over REYAX AT modems.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectAsync, type MqttClient } from 'mqtt';
import { join } from 'node:path';
import { profileOf } from '../drivers/radio/lora-airtime.ts';
import { Channel } from './emulators/channel.ts';
import { KissTnc, ReyaxModem, RNodeModem } from './emulators/modems.ts';
import { haveSocat } from './emulators/pty.ts';
import { runCli } from './helpers/cli.ts';
import { kissLink, radioBoxConfig, reyaxLink, TEST_RADIO } from './helpers/radio-mesh.ts';
import { deviceId, gatewayKey, queuedSeqs, readings, testDeployment, until, type Running } from './helpers/system.ts';

const { dir, broker, launch } = testDeployment(test);
const channels: Channel[] = [];
const clients: MqttClient[] = [];
test.after(async () => {
  for (const c of clients) await c.endAsync();
  for (const c of channels) await c.close();
});

async function meshStatus(stateDir: string) {
  const result = await runCli(['mesh', '--json', '--state-dir', stateDir]);
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout.toString());
}

const seqsOf = (subscriber: Running) => [...new Set(readings(subscriber).filter((r) => r.valid).map((r) => r.seq))].sort((a, b) => a - b);

async function uplinkSide(name: string, device: string) {
  const gatewayDir = join(dir.path, `${name}-gw`);
  const key = await gatewayKey(gatewayDir);
  const gateway = launch(['gateway', '--broker', broker.url, '--state-dir', gatewayDir, '--allow-any']);
  const subscriber = launch(['subscribe', '--broker', broker.url, '--device', device, '--json']);
  await until('gateway connected', () => /connected/.test(gateway.stderr()), 10_000);
  // What the gateway verified, stored and linked into the device's chain, in order.
  const client = await connectAsync(broker.url);
  clients.push(client);
  const chain: { seq: number; chain: string }[] = [];
  client.on('message', (_topic, payload) => chain.push(JSON.parse(payload.toString())));
  await client.subscribeAsync(`iop/v1/${device}/verified`, { qos: 1 });
  const gatewayChain = () => chain;
  return { key, subscriber, gatewayChain };
}

if (!haveSocat()) {
  console.log('radio-mesh: skipped, needs socat and mosquitto');
} else {
  test('5 boxes in a line on emulated radios: every reading of the far box verifies at Mosquitto; the middle radio pulled and put back loses none', async () => {
    const home = join(dir.path, 'line');
    const channel = new Channel({ rangeM: 1000, profile: profileOf(TEST_RADIO) });
    channels.push(channel);
    const paths = Array.from({ length: 5 }, (_, i) => join(dir.path, `radio${i}`));
    for (let i = 0; i < 5; i++) await channel.add(paths[i]!, i * 800, () => (i % 2 === 0 ? new RNodeModem() : new KissTnc(TEST_RADIO)));
    channel.connect();
    const far = join(home, 'box4');
    const device = await deviceId(far);
    const up = await uplinkSide('line', device);
    assert.is((await runCli(['sample', '--count', '4', '--out', '/dev/null', '--state-dir', far])).code, 0);
    const boxes: Running[] = [];
    for (let i = 0; i < 5; i++) {
      const config = radioBoxConfig(home, `box${i}`, [kissLink(paths[i]!)], { gatewayKey: up.key, ...(i === 0 ? { broker: broker.url } : {}), ...(i === 4 ? { intervalMs: 5000 } : {}) });
      boxes.push(launch(['run', '--config', config]));
    }
    await until('the first readings of box 4 at the subscriber', () => seqsOf(up.subscriber).length >= 4, 90_000).catch(async (err) => {
      for (let i = 0; i < 5; i++) console.log(i, boxes[i]!.stderr(), JSON.stringify(await meshStatus(join(home, `box${i}`))));
      console.log(seqsOf(up.subscriber));
      throw err;
    });
    await channel.unplug(2);
    await until('box 2 logs its radio gone', () => /link down/.test(boxes[2]!.stderr()), 10_000);
    const during = seqsOf(up.subscriber).length;
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await channel.plug(2);
    await until('box 2 radio back', () => /RNode configured/.test(boxes[2]!.stderr().split('link down')[1] ?? ''), 40_000);
    await until('readings flowing again', () => seqsOf(up.subscriber).length >= during + 2, 60_000);
    await boxes[4]!.stop();
    const drained = launch(['run', '--config', join(home, 'box4.json'), '--interval', '3600000']);
    await until('box 4 drained', async () => (await queuedSeqs(far)).length === 0, 120_000).catch(async (err) => {
      console.log(drained.stderr(), boxes[3]!.stderr(), JSON.stringify(await meshStatus(join(home, 'box3'))), up.gatewayChain().map((r) => r.seq), await queuedSeqs(far));
      throw err;
    });
    await drained.stop();
    // Box 4's queue is empty only on receipts whose hash matches its own reading at the
    // gateway's frontier: the gateway holds every reading up to it, in one chain.
    const chain = up.gatewayChain();
    const last = chain.at(-1)!.seq;
    assert.equal(chain.map((r) => r.seq), Array.from({ length: last + 1 }, (_, i) => i), 'the gateway verified every sequence number, none missing');
    assert.ok(chain.slice(1).every((r) => r.chain === 'ok'), 'one unbroken chain');
    assert.ok(readings(up.subscriber).every((r) => r.valid), 'the consumer verified every reading it took');
    assert.ok(seqsOf(up.subscriber).length >= last - 4, 'the consumer saw nearly all (it refuses readings that arrive after a later one)');
    const status = await meshStatus(join(home, 'box1'));
    const link = status.links[0];
    assert.is(link.type, 'kiss');
    assert.is(link.modem, 'tnc');
    assert.ok(link.airtimeLastHourMs > 0 && link.budgetLeftMs < 360_000 && link.budgetLeftMs > 0, JSON.stringify(link));
    assert.ok(link.txFrames > 0 && link.rxFrames > 0 && link.txBytes > 0 && link.rxBytes > 0);
    assert.type(link.errors, 'object');
    const human = (await runCli(['mesh', '--state-dir', join(home, 'box1')])).stdout.toString();
    assert.match(human, /links:\n  kiss:\S+ [0-9a-f]{8}  out \d+ frames \d+ B, in \d+ frames \d+ B  up  airtime \d+\.\d s in the last hour, budget left \d+\.\d s/);
    const onAir = [0, 1, 2, 3, 4].map((i) => channel.airLog(i).reduce((s, t) => s + t.airtimeMs, 0));
    console.log(`radio-mesh: airtime per box (ms) ${onAir.map((a) => a.toFixed(0)).join(', ')}`);
    for (const b of boxes) await b.stop();
  });

  test('2 boxes over REYAX AT modems: readings reach the gateway through the modem and its 171-byte MTU', async () => {
    const home = join(dir.path, 'reyax');
    const channel = new Channel({ profile: profileOf(TEST_RADIO) });
    channels.push(channel);
    const paths = [join(dir.path, 'rylr0'), join(dir.path, 'rylr1')];
    await channel.add(paths[0]!, 0, () => new ReyaxModem());
    await channel.add(paths[1]!, 500, () => new ReyaxModem({ okDelayMs: 100 }));
    channel.connect();
    const far = join(home, 'box1');
    const device = await deviceId(far);
    const up = await uplinkSide('reyax', device);
    assert.is((await runCli(['sample', '--count', '5', '--out', '/dev/null', '--state-dir', far])).code, 0);
    launch(['run', '--config', radioBoxConfig(home, 'box0', [reyaxLink(paths[0]!)], { gatewayKey: up.key, broker: broker.url })]);
    const box1 = launch(['run', '--config', radioBoxConfig(home, 'box1', [reyaxLink(paths[1]!)], { gatewayKey: up.key })]);
    await until('the readings of box 1 at the subscriber', () => seqsOf(up.subscriber).length >= 5, 60_000).catch((err) => {
      console.log(box1.stderr(), up.subscriber.stderr(), up.subscriber.stdout());
      throw err;
    });
    assert.match(box1.stderr(), /fragments of \d+ bytes: the smallest link MTU is 171/);
    assert.ok(readings(up.subscriber).every((r) => r.valid));
    const status = await meshStatus(far);
    assert.is(status.links[0].type, 'reyax');
    assert.ok(status.neighbours[0].rssi !== undefined, 'RSSI reaches the mesh');
  });
}

test.run();
