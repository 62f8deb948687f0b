// Five `iop-agent run` boxes in a line on emulated radios (RNodes and plain KISS TNCs on
// socat ptys, joined through the simulated LoRa medium), one with Mosquitto and the
// gateway: the far box's readings arrive and verify, and pulling the middle box's radio
// mid-run and putting it back loses none.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { KissTnc, RNodeModem } from './emulators/modems.ts';
import { haveSocat } from './emulators/pty.ts';
import { runCli } from './helpers/cli.ts';
import { kissLink, meshStatus, radioBoxConfig, radioDeployment, TEST_RADIO, verifiedSeqs } from './helpers/radio-mesh.ts';
import { deviceId, queuedSeqs, readings, until, type Running } from './helpers/system.ts';

const { dir, broker, launch, channel: newChannel, uplink } = radioDeployment(test);

if (!haveSocat()) {
  console.log('radio-mesh: skipped, needs socat and mosquitto');
} else {
  test('5 boxes in a line on emulated radios: every reading of the far box verifies at Mosquitto; the middle radio pulled and put back loses none', async () => {
    const home = join(dir.path, 'line');
    const channel = newChannel({ rangeM: 1000 });
    const paths = Array.from({ length: 5 }, (_, i) => join(dir.path, `radio${i}`));
    for (let i = 0; i < 5; i++) await channel.add(paths[i]!, i * 800, () => (i % 2 === 0 ? new RNodeModem() : new KissTnc(TEST_RADIO)));
    channel.connect();
    const far = join(home, 'box4');
    const device = await deviceId(far);
    const up = await uplink('line', device);
    assert.is((await runCli(['sample', '--count', '4', '--out', '/dev/null', '--state-dir', far])).code, 0);
    const boxes: Running[] = [];
    for (let i = 0; i < 5; i++) {
      const config = radioBoxConfig(home, `box${i}`, [kissLink(paths[i]!)], { gatewayKey: up.key, ...(i === 0 ? { broker: broker.url } : {}), ...(i === 4 ? { intervalMs: 5000 } : {}) });
      boxes.push(launch(['run', '--config', config]));
    }
    await until('the first readings of box 4 at the subscriber', () => verifiedSeqs(up.subscriber).length >= 4, 90_000).catch(async (err) => {
      for (let i = 0; i < 5; i++) console.log(i, boxes[i]!.stderr(), JSON.stringify(await meshStatus(join(home, `box${i}`))));
      console.log(verifiedSeqs(up.subscriber));
      throw err;
    });
    await channel.unplug(2);
    await until('box 2 logs its radio gone', () => /link down/.test(boxes[2]!.stderr()), 10_000);
    const during = verifiedSeqs(up.subscriber).length;
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await channel.plug(2);
    await until('box 2 radio back', () => /RNode configured/.test(boxes[2]!.stderr().split('link down')[1] ?? ''), 40_000);
    await until('readings flowing again', () => verifiedSeqs(up.subscriber).length >= during + 2, 60_000);
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
    // Readings resent after the radio came back arrive after later ones: the consumer
    // fits each into its hole, so it ends with every one.
    await until('the consumer holds every reading the gateway holds', () => verifiedSeqs(up.subscriber).length === last + 1, 20_000).catch((err) => {
      console.log(verifiedSeqs(up.subscriber), up.subscriber.stderr());
      throw err;
    });
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

}

test.run();
