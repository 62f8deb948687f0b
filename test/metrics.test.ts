// GET /metrics of a real agent (simulated sensors, a real Mosquitto and gateway): the text
// passes Prometheus's own checker (promtool, Debian's prometheus package) and its values
// are the agent's own counters, as its control socket reports them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { askAgent } from '../agent/control-socket.ts';
import { runCli, tempDir } from './helpers/cli.ts';
import { startMosquitto, type Broker } from './helpers/mosquitto.ts';
import { boxConfig, gatewayKey, start, until, type Running } from './helpers/system.ts';
import { hasCommand } from './helpers/requires.ts';
import { parseExposition, type Exposition } from './helpers/prometheus.ts';

const dir = tempDir();
const running: Running[] = [];
let broker: Broker | undefined;
test.after(async () => {
  for (const r of running) await r.stop('SIGKILL');
  await broker?.stop();
  dir.remove();
});

function get(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** promtool's lint: exit 0 and no complaint, or the reason it is not run. */
function promtoolCheck(text: string): string | undefined {
  if (!hasCommand('promtool')) return 'promtool not installed (Debian: prometheus)';
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.is(result.status, 0, `promtool check metrics:\n${result.stdout}${result.stderr}`);
  return undefined;
}

test('after a real run, /metrics passes promtool and shows the agent\'s own counters: readings signed, stored, published, receipted; queue; uplink and reconnects; sensor errors', async () => {
  broker = await startMosquitto();
  const gwDir = join(dir.path, 'gw');
  const config = boxConfig(dir.path, 'box', { gatewayKeys: [await gatewayKey(gwDir)] }, {
    sampling: { intervalMs: 1000 },
    sensors: [
      { type: 'simulated', name: 'outdoor', quantity: 'temperature' },
      { type: 'simulated', name: 'flaky', quantity: 'humidity', failureRate: 1 },
    ],
  });
  // a backlog signed and stored without network, for the uplink to drain
  assert.is((await runCli(['sample', '--count', '40', '--out', '/dev/null', '--config', config])).code, 0);
  const gateway = start(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any']);
  running.push(gateway);
  const box = start(['run', '--config', config, '--broker', broker.url, '--metrics', '127.0.0.1:0']);
  running.push(box);
  await until('the metrics address', () => /Prometheus metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/.test(box.stderr()), 20_000);
  const url = /Prometheus metrics at (http:\/\/\S+)/.exec(box.stderr())![1]!;

  let m: Exposition = parseExposition('');
  let last = '';
  const scrape = async () => {
    const res = await get(url);
    assert.is(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    m = parseExposition(res.body);
    last = res.body;
    return res.body;
  };
  type Status = { queue: { stored: number; head: number; dropped: number }; uplink: boolean; sensors: { name: string; reads: number; failures: number; ok: boolean }[] };
  const askStatus = async () => await askAgent(join(dir.path, 'box'), 'status') as Status;
  // A scrape between two identical statuses (no tick in between), after two ticks of this
  // run, with every reading receipted.
  let status: Status | undefined;
  await until('every reading receipted, between two ticks', async () => {
    const before = await askStatus();
    const body = await scrape();
    const after = await askStatus();
    status = after;
    return JSON.stringify(before) === JSON.stringify(after) && m.value('iop_agent_readings_stored_total') >= 2 && m.value('iop_agent_queue_readings') === 0 && body.length > 0;
  }, 30_000, 100).catch((err) => { throw new Error(`${err.message}\n${box.stderr()}\n${gateway.stderr()}\n${last.split('\n').filter((l) => /^iop_agent_(readings|queue|uplink|receipts)/.test(l)).join('\n')}`); });
  const skipped = promtoolCheck(last);
  if (skipped) console.log(`  promtool check skipped: ${skipped}`);

  if (!status) throw new Error('no status');
  // the chain: 40 sampled before, plus what this run stored
  assert.is(m.value('iop_agent_readings_signed_total'), status.queue.head + 1);
  assert.is(m.value('iop_agent_readings_signed_total'), 40 + m.value('iop_agent_readings_stored_total'));
  assert.is(m.value('iop_agent_readings_store_failures_total'), 0);
  assert.is(m.value('iop_agent_readings_receipted_total'), status.queue.head + 1, 'every reading freed by a receipt');
  assert.ok(m.value('iop_agent_readings_published_total') >= m.value('iop_agent_readings_receipted_total'));
  assert.ok(m.value('iop_agent_receipts_total', { result: 'accepted' }) >= 1);
  assert.is(m.value('iop_agent_receipts_total', { result: 'refused' }), 0);
  assert.is(m.value('iop_agent_readings_dropped_total'), status.queue.dropped);
  assert.is(m.value('iop_agent_queue_readings'), status.queue.stored);
  assert.is(m.value('iop_agent_queue_oldest_age_seconds'), 0);
  assert.is(m.value('iop_agent_uplink_connected'), 1);
  assert.is(status.uplink, true);
  assert.is(m.value('iop_agent_uplink_reconnects_total'), 0);
  for (const sensor of status.sensors) {
    assert.is(m.value('iop_agent_sensor_reads_total', { sensor: sensor.name }), sensor.reads, sensor.name);
    assert.is(m.value('iop_agent_sensor_read_errors_total', { sensor: sensor.name }), sensor.failures, sensor.name);
    assert.is(m.value('iop_agent_sensor_ok', { sensor: sensor.name }), sensor.ok ? 1 : 0, sensor.name);
  }
  assert.ok(m.value('iop_agent_sensor_read_errors_total', { sensor: 'flaky' }) >= 1);
  assert.is(m.value('iop_agent_sensor_read_errors_total', { sensor: 'outdoor' }), 0);
  // process and event loop, from prom-client, under the agent's prefix
  assert.ok(m.value('iop_agent_process_resident_memory_bytes') > 10e6);
  assert.ok(m.value('iop_agent_nodejs_eventloop_lag_seconds') >= 0);
  assert.is(m.type('iop_agent_readings_signed_total'), 'counter');
  assert.is(m.type('iop_agent_queue_readings'), 'gauge');
  for (const name of m.names()) assert.match(name, /^iop_agent_/);

  // the broker goes away and comes back: disconnected, then one reconnection
  const port = broker.port;
  await broker.stop();
  await until('uplink down', async () => { await scrape(); return m.value('iop_agent_uplink_connected') === 0; }, 15_000, 250);
  broker = await startMosquitto({ port });
  await until('uplink up again', async () => { await scrape(); return m.value('iop_agent_uplink_connected') === 1; }, 20_000, 250);
  assert.is(m.value('iop_agent_uplink_reconnects_total'), 1);

  // only GET and HEAD, only /metrics
  assert.is((await get(url, 'HEAD')).status, 200);
  assert.is((await get(url, 'POST')).status, 405);
  assert.is((await get(url.replace(/\/metrics$/, '/other'))).status, 404);

  assert.is((await box.stop()).code, 0);
});

test('a listen address that is not host:port is a configuration error naming the field', async () => {
  const config = boxConfig(dir.path, 'bad', {}, { metrics: { listen: 'localhost' } });
  const result = await runCli(['config', '--config', config]);
  assert.is(result.code, 2);
  assert.match(result.stderr, /metrics\.listen.*host:port/);
  const flag = await runCli(['run', '--state-dir', join(dir.path, 'bad-flag'), '--metrics', 'nowhere']);
  assert.is(flag.code, 2);
  assert.match(flag.stderr, /--metrics expects host:port/);
});

test.run();
