// Two `iop-agent run` boxes over emulated REYAX AT modems (socat ptys, the simulated
// LoRa medium), one with Mosquitto and the gateway: readings cross through the modems'
// 171-byte MTU with the mesh's fragments fitted to it, and RSSI reaches the mesh.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { ReyaxModem } from './emulators/modems.ts';
import { haveSocat } from './emulators/pty.ts';
import { runCli } from './helpers/cli.ts';
import { meshStatus, radioBoxConfig, radioDeployment, reyaxLink, verifiedSeqs } from './helpers/radio-mesh.ts';
import { deviceId, readings, until } from './helpers/system.ts';

const { dir, broker, launch, channel: newChannel, uplink } = radioDeployment(test);

if (!haveSocat()) {
  console.log('radio-reyax: skipped, needs socat and mosquitto');
} else {
  test('2 boxes over REYAX AT modems: readings reach the gateway through the modem and its 171-byte MTU', async () => {
    const channel = newChannel();
    const paths = [join(dir.path, 'rylr0'), join(dir.path, 'rylr1')];
    await channel.add(paths[0]!, 0, () => new ReyaxModem());
    await channel.add(paths[1]!, 500, () => new ReyaxModem({ okDelayMs: 100 }));
    channel.connect();
    const far = join(dir.path, 'box1');
    const device = await deviceId(far);
    const up = await uplink('reyax', device);
    assert.is((await runCli(['sample', '--count', '5', '--out', '/dev/null', '--state-dir', far])).code, 0);
    launch(['run', '--config', radioBoxConfig(dir.path, 'box0', [reyaxLink(paths[0]!)], { gatewayKey: up.key, broker: broker.url })]);
    const box1 = launch(['run', '--config', radioBoxConfig(dir.path, 'box1', [reyaxLink(paths[1]!)], { gatewayKey: up.key })]);
    await until('the readings of box 1 at the subscriber', () => verifiedSeqs(up.subscriber).length >= 5, 60_000);
    assert.match(box1.stderr(), /fragments of 112 bytes: the smallest link MTU is 171/);
    assert.ok(readings(up.subscriber).every((r) => r.valid));
    // The gateway's stream is another MQTT client: it may see the last reading a moment later.
    await until('the readings of box 1 in the gateway\'s stream', () => up.gatewayChain().length >= 5, 30_000);
    assert.equal(up.gatewayChain().map((r) => r.seq).slice(0, 5), [0, 1, 2, 3, 4]);
    const status = await meshStatus(far);
    assert.is(status.links[0].type, 'reyax');
    assert.is(status.links[0].mtu, 171);
    assert.ok(status.neighbours[0].rssi !== undefined, 'RSSI reaches the mesh');
    assert.equal(channel.modem(1).refused, [], 'the modem refused nothing the driver sent');
  });
}

test.run();
