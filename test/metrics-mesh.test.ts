// /metrics of a mesh box: two `iop-agent run` boxes on emulated LoRa radios (KISS TNCs on
// socat ptys), one with the uplink. The far box's mesh metrics are the figures
// `iop-agent mesh --json` shows: neighbours, routes, per-link frames, bytes, airtime and
// duty-cycle budget; and its readings reach the gateway through the mesh.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { KissTnc } from './emulators/modems.ts';
import { haveSocat } from './emulators/pty.ts';
import { kissLink, meshStatus, radioBoxConfig, radioDeployment, TEST_RADIO } from './helpers/radio-mesh.ts';
import { deviceId, until, type Running } from './helpers/system.ts';
import { hasCommand } from './helpers/requires.ts';
import { parseExposition } from './helpers/prometheus.ts';

const { dir, broker, launch, channel: newChannel, uplink } = radioDeployment(test);

async function scrape(box: Running) {
  const url = /Prometheus metrics at (http:\/\/\S+)/.exec(box.stderr())?.[1];
  if (!url) throw new Error(`no metrics address yet:\n${box.stderr()}`);
  const res = await fetch(url);
  const text = await res.text();
  return { text, m: parseExposition(text) };
}

if (!haveSocat()) {
  console.log('metrics-mesh: skipped, needs socat and mosquitto');
} else {
  test('a mesh box\'s /metrics: neighbours, routes, per-link frames/bytes/airtime and budget as `iop-agent mesh --json` shows them; relayed readings receipted', async () => {
    const home = join(dir.path, 'pair');
    const channel = newChannel({ rangeM: 1000 });
    const paths = [join(dir.path, 'radio0'), join(dir.path, 'radio1')];
    for (let i = 0; i < 2; i++) await channel.add(paths[i]!, i * 500, () => new KissTnc(TEST_RADIO));
    channel.connect();
    const far = join(home, 'box1');
    const up = await uplink('pair', await deviceId(far));
    const boxes = [0, 1].map((i) => {
      const config = radioBoxConfig(home, `box${i}`, [kissLink(paths[i]!)], { gatewayKey: up.key, ...(i === 0 ? { broker: broker.url } : { intervalMs: 2000 }) });
      return launch(['run', '--config', config, '--metrics', '127.0.0.1:0']);
    });
    const farBox = boxes[1]!;
    await until('two readings of the far box receipted through the mesh', async () => {
      try {
        return (await scrape(farBox)).m.value('iop_agent_readings_receipted_total') >= 2;
      } catch {
        return false;
      }
    }, 90_000, 500).catch((err) => { throw new Error(`${err.message}\n${farBox.stderr()}\n${boxes[0]!.stderr()}`); });

    const before = await meshStatus(far);
    const { text, m } = await scrape(farBox);
    const after = await meshStatus(far);
    if (hasCommand('promtool')) {
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.is(lint.status, 0, lint.stdout + lint.stderr);
    } else console.log('  promtool check skipped: promtool not installed (Debian: prometheus)');

    assert.is(m.value('iop_agent_uplink_connected'), 0, 'no uplink of its own');
    assert.is(m.value('iop_agent_mesh_neighbours'), after.neighbours.length);
    assert.ok(after.neighbours.length >= 1);
    assert.ok(m.value('iop_agent_mesh_routes') >= 1);
    assert.ok(m.value('iop_agent_mesh_uplink_routes') >= 1, 'a selected route to the uplink box');
    const link = before.links[0];
    const later = after.links[0];
    assert.ok(link.name, 'the link has a name');
    // counters between the two `mesh --json` calls around the scrape
    const between = (metric: string, field: string, scale = 1) => {
      const v = m.value(metric, { link: link.name });
      assert.ok(v >= link[field] / scale && v <= later[field] / scale, `${metric} ${v} between ${link[field] / scale} and ${later[field] / scale}`);
    };
    between('iop_agent_mesh_link_tx_frames_total', 'txFrames');
    between('iop_agent_mesh_link_rx_frames_total', 'rxFrames');
    between('iop_agent_mesh_link_tx_bytes_total', 'txBytes');
    between('iop_agent_mesh_link_rx_bytes_total', 'rxBytes');
    between('iop_agent_mesh_link_airtime_seconds_total', 'airtimeMs', 1000);
    assert.ok(m.value('iop_agent_mesh_link_airtime_seconds_total', { link: link.name }) > 0, 'a radio spends airtime');
    const budget = m.value('iop_agent_mesh_link_budget_seconds', { link: link.name });
    assert.ok(budget > 0 && budget <= later.allowanceMs / 1000, `budget ${budget} s within the allowance ${later.allowanceMs} ms`);
    for (const cause of ['noRoute', 'hopLimit', 'unacknowledged']) assert.ok(m.value('iop_agent_mesh_dropped_total', { cause }) >= 0);
    assert.is(m.value('iop_agent_mesh_rejected_total', { cause: 'mac' }), after.counters.rejected.mac);
    await Promise.all(boxes.map((b) => b.stop()));
  });
}

test.run();
