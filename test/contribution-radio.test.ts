// Contribution on running boxes: two `iop-agent run` boxes on emulated RNodes (socat
// ptys joined through the simulated LoRa medium), one with Mosquitto and the gateway.
// Each beacons on its radio and witnesses the other's beacon; the box without uplink's
// beacon and witness reach the broker through the uplink box, on its own topics, signed
// by it; the uplink box attests the readings it relayed when it stops.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { openContribution } from '../agent/contribution/messages.ts';
import { RNodeModem } from './emulators/modems.ts';
import { haveSocat } from './emulators/pty.ts';
import { kissLink, radioBoxConfig, radioDeployment } from './helpers/radio-mesh.ts';
import { deviceId, until, type Running } from './helpers/system.ts';

const { dir, broker, launch, channel: newChannel, uplink } = radioDeployment(test);

/** A radio box's config with beacons every `periodS` (20 s: several within the test). */
function withBeacons(file: string, periodS: number): string {
  const config = JSON.parse(readFileSync(file, 'utf8'));
  config.mesh.beaconPeriodS = periodS;
  writeFileSync(file, JSON.stringify(config));
  return file;
}

if (!haveSocat()) {
  console.log('contribution-radio: skipped, needs socat and mosquitto');
} else {
  test('two radio boxes beacon and witness each other; the mesh box\'s reports and the relay attestation reach the broker', async () => {
    const home = join(dir.path, 'pair');
    const channel = newChannel({ rangeM: 1000 });
    const paths = [0, 1].map((i) => join(dir.path, `radio${i}`));
    for (let i = 0; i < 2; i++) await channel.add(paths[i]!, i * 600, () => new RNodeModem());
    channel.connect();
    const ids = [await deviceId(join(home, 'box0')), await deviceId(join(home, 'box1'))];
    const up = await uplink('pair', ids[1]!);
    const seen: { topic: string; bytes: Uint8Array }[] = [];
    const watcher = await connectAsync(broker.url);
    watcher.on('message', (topic, payload) => seen.push({ topic, bytes: new Uint8Array(payload) }));
    await watcher.subscribeAsync(['iop/v1/+/beacon', 'iop/v1/+/witness', 'iop/v1/+/relay'], { qos: 1 });
    const boxes: Running[] = [];
    for (let i = 0; i < 2; i++) {
      const config = radioBoxConfig(home, `box${i}`, [kissLink(paths[i]!)], { gatewayKey: up.key, ...(i === 0 ? { broker: broker.url } : { intervalMs: 4000 }) });
      boxes.push(launch(['run', '--config', withBeacons(config, 20)]));
    }
    const on = (id: string, kind: string) => seen.filter((m) => m.topic === `iop/v1/${id}/${kind}`);
    try {
      await until('beacons and witnesses of both boxes at the broker', () => [0, 1].every((i) => on(ids[i]!, 'beacon').length >= 1 && on(ids[i]!, 'witness').length >= 1), 120_000);
    } catch (err) {
      console.log(boxes.map((b) => b.stderr()).join('\n---\n'), seen.map((m) => m.topic));
      throw err;
    }
    for (const m of seen) {
      const opened = openContribution(m.bytes);
      assert.ok(opened.valid, m.topic);
      assert.is(m.topic.split('/')[2], opened.signer.id, 'each on its signer\'s topic');
      if (opened.message.kind === 'witness') {
        assert.ok(opened.message.body.rssi < 0 && opened.message.body.region === 'EU868' && opened.message.body.link.startsWith('kiss:'), JSON.stringify(opened.message.body));
      }
    }
    await until('box 1\'s readings relayed', () => up.gatewayChain().length >= 2, 60_000);
    await boxes[0]!.stop();
    await until('the uplink box\'s relay attestation, sent as it stops', () => on(ids[0]!, 'relay').length >= 1, 10_000);
    const attestation = openContribution(on(ids[0]!, 'relay')[0]!.bytes);
    assert.ok(attestation.message.kind === 'relay' && attestation.message.body.hashes.filter((h) => h.length).length >= 2);
    await boxes[1]!.stop();
    await watcher.endAsync();
  });
}

test.run();
