import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from './helpers/cli.ts';

const dir = tempDir();
test.after(() => dir.remove());

async function checkConfig(name: string, content: string) {
  const file = join(dir.path, name);
  writeFileSync(file, content);
  const result = await runCli(['config', '--config', file]);
  return { file, ...result };
}

test('no config file at all gives working defaults: four simulated sensors', async () => {
  const result = await runCli(['config']);
  assert.is(result.code, 0, result.stderr);
  const config = JSON.parse(result.stdout.toString());
  assert.is(config.stateDir, '/var/lib/iop-agent');
  assert.is(config.sampling.intervalMs, 10000);
  assert.equal(config.sensors.map((s: { quantity: string }) => s.quantity), ['temperature', 'humidity', 'pressure', 'pulse']);
  assert.is(config.uplink.broker, null);
});

test('a valid YAML and a valid JSON file are accepted, flags override them', async () => {
  const yaml = await checkConfig('ok.yaml', `
version: 1
stateDir: /tmp/somewhere
sampling:
  intervalMs: 2000
sensors:
  - type: simulated
    name: outdoor
    quantity: temperature
    intervalMs: 4000
uplink:
  broker: mqtts://gateway.example:8883
`);
  assert.is(yaml.code, 0, yaml.stderr);
  const config = JSON.parse(yaml.stdout.toString());
  assert.is(config.sensors[0].intervalMs, 4000);
  assert.is(config.uplink.broker, 'mqtts://gateway.example:8883');
  const json = await checkConfig('ok.json', JSON.stringify({ sampling: { intervalMs: 500 } }));
  assert.is(json.code, 0, json.stderr);
  const file = join(dir.path, 'ok.json');
  const withFlags = await runCli(['config', '--config', file, '--state-dir', '/tmp/flag']);
  assert.is(JSON.parse(withFlags.stdout.toString()).stateDir, '/tmp/flag');
});

const BAD: [string, string, RegExp][] = [
  ['unknown top-level key', 'sampel:\n  intervalMs: 100\n', /sampel: unknown field/],
  ['unknown nested key', 'sampling:\n  interval: 100\n', /sampling\.interval: unknown field/],
  ['wrong type', 'sampling:\n  intervalMs: fast\n', /sampling\.intervalMs: expected a number of milliseconds/],
  ['out of range', 'sampling:\n  intervalMs: 1\n', /sampling\.intervalMs: expected at least 10 ms/],
  ['not a whole number', 'sampling:\n  intervalMs: 100.5\n', /sampling\.intervalMs: expected a whole number/],
  ['unknown sensor type', 'sensors:\n  - type: thermometer\n    name: t\n', /sensors\[0\]\.type: expected one of 'simulated'/],
  ['missing required field', 'sensors:\n  - type: simulated\n    name: t\n', /sensors\[0\]\.quantity: expected one of/],
  ['bad enum value', 'sensors:\n  - type: simulated\n    name: t\n    quantity: radiation\n', /sensors\[0\]\.quantity: expected one of "temperature"/],
  ['duplicate sensor names', 'sensors:\n  - {type: simulated, name: a, quantity: temperature}\n  - {type: simulated, name: a, quantity: humidity}\n', /sensors\[1\]\.name: duplicate sensor name 'a'/],
  ['bad sensor name', 'sensors:\n  - {type: simulated, name: "a b", quantity: temperature}\n', /sensors\[0\]\.name: expected letters, digits/],
  ['sensor faster than the tick', 'sampling: {intervalMs: 1000}\nsensors:\n  - {type: simulated, name: a, quantity: temperature, intervalMs: 100}\n', /sensors\[0\]\.intervalMs: expected at least sampling\.intervalMs \(1000\)/],
  ['bad broker URL', 'uplink:\n  broker: http://example.com\n', /uplink\.broker: expected a broker URL/],
  ['wrong config version', 'version: 2\n', /version: expected 1/],
  ['not a mapping', '- just\n- a list\n', /expected a mapping of settings at the top level/],
  ['YAML syntax error', 'sampling:\n  intervalMs: [1, 2\n', /not valid YAML/],
  ['duplicate YAML key', 'stateDir: /a\nstateDir: /b\n', /not valid YAML.*unique/i],
  ['wrong type for a section', 'mesh: true\n', /mesh: expected object/],
  ['empty sensor list', 'sensors: []\n', /sensors: expected at least one sensor/],
];

test(`${BAD.length} kinds of bad config each give exit 2 and a message naming the file and the field`, async () => {
  for (const [kind, content, pattern] of BAD) {
    const result = await checkConfig(`${kind.replace(/\W+/g, '-')}.yaml`, content);
    assert.is(result.code, 2, `${kind}: exit ${result.code}`);
    assert.ok(result.stderr.includes(result.file), `${kind}: file not named in ${result.stderr}`);
    assert.match(result.stderr, pattern, `${kind}: ${result.stderr}`);
  }
});

test('several problems are reported at once', async () => {
  const result = await checkConfig('many.yaml', 'sampling:\n  intervalMs: x\nlog:\n  level: loud\nextra: 1\n');
  assert.is(result.code, 2);
  for (const field of ['sampling.intervalMs', 'log.level', 'extra']) assert.ok(result.stderr.includes(field), field);
});

test('bad JSON names the file; a missing file is a clear error', async () => {
  const bad = await checkConfig('bad.json', '{"sampling": {"intervalMs": 100,}}');
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /bad\.json: not valid JSON/);
  const missing = await runCli(['config', '--config', join(dir.path, 'nope.yaml')]);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /cannot read config file .*nope\.yaml: ENOENT/);
  const viaEnv = await runCli(['config'], { env: { IOP_AGENT_CONFIG: join(dir.path, 'bad.json') } });
  assert.is(viaEnv.code, 2);
});

test('run refuses a bad config before touching the state dir', async () => {
  const state = join(dir.path, 'never');
  const file = join(dir.path, 'run-bad.yaml');
  writeFileSync(file, `stateDir: ${state}\nsampling: {intervalMs: -5}\n`);
  const result = await runCli(['run', '--config', file]);
  assert.is(result.code, 2);
  const { existsSync } = await import('node:fs');
  assert.not.ok(existsSync(state));
});

test.run();
