// Honest time: a box whose clock is not trusted writes no wall time, only the time since
// boot and its quality; the first trusted pack anchors the earlier ones; a GPS fix is a
// time source; clock jumps are logged. The end-to-end test runs `iop-agent sample` with a
// clock set to 1970 (faketime) and no sync source, on fixture sensors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAdjtimexStatus, TimeKeeper, TRUSTED_FLOOR_MS, type TimeSources } from '../agent/time/time-keeper.ts';
import { Sampler } from '../agent/sampler.ts';
import { createLogger, silentLogger } from '../agent/log.ts';
import { encodeSenmlPack, resolveSenmlPack } from '../agent/codec/senml.ts';
import { decodeCbor } from '../agent/codec/cbor.ts';
import { createSimulatedSensor } from '../sensors/simulated.ts';
import { FixtureSysfs } from './helpers/fixture-sysfs.ts';
import { CLI, ROOT, collect, runCli } from './helpers/cli.ts';
import { hasCommand } from './helpers/pty-pair.ts';
import { spawn } from 'node:child_process';

const DEC_2026 = Date.UTC(2026, 11, 1, 12);

function fakeSources(state: { wall: number; mono: number; synced: boolean }): TimeSources {
  return { wallMs: () => state.wall, monotonicMs: () => state.mono, uptimeAtOriginS: 100, boot: 'abcd1234', isSynchronised: () => state.synced };
}

test('time keeper: 1970 is never trusted, even when a check says synchronised; ntp after the floor', () => {
  const state = { wall: 86_400_000, mono: 5_000, synced: true };
  const keeper = new TimeKeeper(fakeSources(state));
  assert.equal(keeper.stamp(), { quality: 'none', uptimeS: 105, boot: 'abcd1234' });
  state.synced = false;
  state.wall = DEC_2026;
  assert.is(keeper.stamp().quality, 'none', 'a plausible time without a sync source is not trusted either');
  state.synced = true;
  assert.equal(keeper.stamp(), { wallMs: DEC_2026, quality: 'ntp', uptimeS: 105, boot: 'abcd1234' });
  assert.ok(TRUSTED_FLOOR_MS > Date.UTC(2025, 0, 1));
});

test('the kernel\'s adjtimex status: STA_UNSYNC set or clear', () => {
  const busybox = '    mode:         0\n    maxerror:     16000000\n    status:       64 (UNSYNC)\n    return value: 5 (clock not synchronized)\n';
  assert.is(parseAdjtimexStatus(busybox), false);
  assert.is(parseAdjtimexStatus('    status:       8193 (PLL | NANO)\n'), true);
  assert.is(parseAdjtimexStatus('         status: 8257\n'), false, 'Debian adjtimex -p: PLL | UNSYNC | NANO');
  assert.is(parseAdjtimexStatus('no such applet'), undefined);
});

test('time keeper: a GPS fix is a time source carried on the monotonic clock, for an hour', () => {
  const state = { wall: 0, mono: 10_000, synced: false };
  const keeper = new TimeKeeper(fakeSources(state));
  keeper.gpsTime({ utcMs: Date.UTC(1980, 0, 6), monotonicMs: 10_000 });
  assert.is(keeper.stamp().quality, 'none', 'a GPS time before the floor (week rollover) is ignored');
  keeper.gpsTime({ utcMs: DEC_2026, monotonicMs: 10_000 });
  state.mono = 70_000;
  assert.equal(keeper.stamp(), { wallMs: DEC_2026 + 60_000, quality: 'gps', uptimeS: 170, boot: 'abcd1234' });
  state.mono += 3_600_001;
  assert.is(keeper.stamp().quality, 'none', 'an hour without a new fix: no longer trusted');
});

test('time keeper: jumps of the wall clock against the monotonic clock are logged and counted', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', sink: { write: (l: string) => { lines.push(l); } } });
  const state = { wall: 86_400_000, mono: 1_000, synced: false };
  const keeper = new TimeKeeper(fakeSources(state), log);
  keeper.stamp();
  state.wall += 30_000; state.mono += 1_000;
  keeper.stamp();
  assert.is(keeper.status().jumps, 0, '29 s is drift correction, not a jump');
  state.wall = DEC_2026; state.synced = true; state.mono += 1_000;
  keeper.stamp();
  state.wall -= 3_600_000; state.mono += 1_000;
  keeper.stamp();
  assert.is(keeper.status().jumps, 2);
  assert.ok(lines.some((l) => /jumped forwards/.test(l)) && lines.some((l) => /jumped backwards by 3601 s/.test(l)));
});

test('sampler and codec: untrusted packs carry no time; the first trusted pack anchors them', async () => {
  const state = { wall: 86_400_000, mono: 1_000, synced: false };
  const sampler = new Sampler({
    intervalMs: 1000, log: silentLogger,
    sensors: [{ sensor: createSimulatedSensor({ name: 't', quantity: 'temperature', seed: 1 }), intervalMs: 1000 }],
    time: new TimeKeeper(fakeSources(state)),
  });
  const untrusted = (await sampler.tick(state.wall))!;
  assert.is(untrusted.time, undefined);
  assert.equal([untrusted.timeQuality, untrusted.uptime, untrusted.boot], ['none', 101, 'abcd1234']);
  const [record] = resolveSenmlPack(decodeCbor(encodeSenmlPack(untrusted)), DEC_2026 / 1000);
  assert.is(record!.t, undefined, 'the verifier does not invent a time');
  assert.equal([record!.tq, record!.up, record!.boot], ['none', 101, 'abcd1234']);

  state.wall = DEC_2026; state.synced = true; state.mono = 61_000;
  const anchor = (await sampler.tick(state.wall, { all: true }))!;
  assert.equal([anchor.time, anchor.timeQuality, anchor.uptime, anchor.boot], [DEC_2026 / 1000, 'ntp', 161, 'abcd1234']);
  const [anchored] = resolveSenmlPack(decodeCbor(encodeSenmlPack(anchor)), 0);
  // The earlier reading's true time: anchor time - (anchor uptime - its uptime).
  assert.is(anchored!.t! - (anchored!.up! - record!.up!), DEC_2026 / 1000 - 60);
  state.mono = 62_000; state.wall += 1000;
  const plain = (await sampler.tick(state.wall, { all: true }))!;
  assert.equal([plain.uptime, plain.boot], [undefined, undefined], 'later trusted packs stay as small as before');
  assert.is(encodeSenmlPack(plain).length, encodeSenmlPack({ time: plain.time, records: plain.records }).length);
});

test('sampler: a clock set back an hour does not stop a slow sensor from being read', async () => {
  const sampler = new Sampler({
    intervalMs: 1000, log: silentLogger,
    sensors: [{ sensor: createSimulatedSensor({ name: 'slow', quantity: 'pressure', seed: 2 }), intervalMs: 60_000 }],
  });
  assert.ok(await sampler.tick(DEC_2026));
  assert.is(await sampler.tick(DEC_2026 + 1000), undefined, 'not due a second later');
  assert.ok(await sampler.tick(DEC_2026 - 3_600_000), 'due at once after the clock went back');
});

// End to end: iop-agent sample with fixture sensors, at 1970 and at the real time.
const dir = mkdtempSync(join(tmpdir(), 'iop-time-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function fixtureConfig(name: string): string {
  const fixture = new FixtureSysfs(join(dir, `${name}-root`));
  fixture.ds18b20('28-0316a2794aff', 18_312);
  fixture.iio(0, 'bme280', { in_temp_input: '21370', in_humidityrelative_input: '48213', in_pressure_input: '101.325' });
  const config = join(dir, `${name}.json`);
  writeFileSync(config, JSON.stringify({
    stateDir: join(dir, `${name}-state`),
    hardware: { sysfsRoot: fixture.root },
    sensors: [
      { type: 'ds18b20', name: 'soil', id: '28-0316a2794aff' },
      { type: 'iio', name: 'air', device: 'bme280', channels: ['temperature', 'humidity', 'pressure'] },
    ],
  }));
  return config;
}

async function verified(config: string, command?: string[]): Promise<{ records: { n: string; u: string; v: number; t?: number; tq?: string; up?: number }[] }[]> {
  const out = join(dir, `${Math.random().toString(36).slice(2)}.cbor`);
  const sample = await runCli(['sample', '--count', '3', '--out', out, '--config', config], { command, timeoutMs: 60_000 });
  assert.is(sample.code, 0, sample.stderr);
  const verify = await runCli(['verify', out]);
  assert.is(verify.code, 0, verify.stderr);
  return verify.stdout.toString().trim().split('\n').map((l) => JSON.parse(l));
}

const EXPECTED = [
  ['soil', 'Cel', 18.312], ['air/temperature', 'Cel', 21.37], ['air/humidity', '%RH', 48.213], ['air/pressure', 'Pa', 101_325],
];

test('iop-agent sample on fixture sensors: verify shows the values and units the fixtures hold', async () => {
  const lines = await verified(fixtureConfig('now'));
  assert.is(lines.length, 3);
  for (const line of lines) assert.equal(line.records.map((r) => [r.n, r.u, r.v]), EXPECTED);
});

test('clock at 1970, no RTC, no sync source: not one reading carries a wall-clock time', async () => {
  if (!hasCommand('faketime')) return console.log('skip: needs faketime (Debian package faketime)');
  const lines = await verified(fixtureConfig('1970'), ['env', 'FAKETIME_DONT_FAKE_MONOTONIC=1', 'faketime', '1970-01-02 00:00:00', process.execPath, CLI]);
  assert.is(lines.length, 3);
  for (const line of lines) {
    assert.equal(line.records.map((r) => [r.n, r.u, r.v]), EXPECTED);
    for (const record of line.records) {
      assert.is(record.t, undefined, 'no time at all');
      assert.is(record.tq, 'none');
      assert.ok(record.up! > 0, 'time since boot instead');
    }
  }
  // The process really ran at 1970: the agent says so in its log.
  const child = spawn('env', ['FAKETIME_DONT_FAKE_MONOTONIC=1', 'faketime', '1970-01-02 00:00:00', process.execPath, CLI, 'sample', '--count', '1', '--out', join(dir, 'log.cbor'), '--config', fixtureConfig('log')], { cwd: ROOT, env: { ...process.env, IOP_AGENT_CONFIG: '' } });
  const result = await collect(child);
  assert.match(result.stderr, /^1970-01-02T00:00/m);
  assert.match(result.stderr, /time quality at start -> none/);
});

test.run();
