import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSimulatedSensor } from '../sensors/simulated.ts';
import type { Sensor } from '../sensors/sensor.ts';
import { Sampler } from '../agent/sampler.ts';
import { createLogger, silentLogger } from '../agent/log.ts';

const HOUR_MS = 3_600_000;
const START_MS = Date.UTC(2026, 5, 1, 0, 0, 0);

async function series(sensor: Sensor, stepMs: number, count: number, field = 0): Promise<number[]> {
  const values: number[] = [];
  for (let i = 0; i < count; i++) values.push((await sensor.read(START_MS + i * stepMs))[field]!.v!);
  return values;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));

test('simulated temperature: plausible range, a daily cycle, drift and noise, SenML unit Cel', async () => {
  const sensor = createSimulatedSensor({ name: 't', quantity: 'temperature', seed: 1 });
  const [record] = await sensor.read(START_MS);
  assert.is(record!.u, 'Cel');
  const hourly = await series(sensor, HOUR_MS, 24 * 7);
  assert.ok(Math.min(...hourly) > -10 && Math.max(...hourly) < 40, 'plausible outdoor range');
  const afternoon = mean(hourly.filter((_, i) => i % 24 === 15));
  const night = mean(hourly.filter((_, i) => i % 24 === 3));
  assert.ok(afternoon - night > 5, `afternoon ${afternoon} should be warmer than night ${night}`);
  // noise: consecutive one-second reads differ, but only by sensor noise
  const fast = await series(createSimulatedSensor({ name: 't', quantity: 'temperature', seed: 2 }), 1000, 60);
  const steps = fast.slice(1).map((v, i) => Math.abs(v - fast[i]!));
  assert.ok(steps.some((s) => s > 0), 'values change from read to read');
  assert.ok(Math.max(...steps) < 0.5, 'no jumps between one-second reads');
  for (const v of fast) assert.is(Math.round(v * 100) / 100, v, 'reported at 0.01 °C resolution');
});

test('simulated humidity and pressure stay physical and drift', async () => {
  const humidity = await series(createSimulatedSensor({ name: 'h', quantity: 'humidity', seed: 3 }), HOUR_MS, 24 * 14);
  assert.ok(Math.min(...humidity) >= 0 && Math.max(...humidity) <= 100);
  assert.ok(sd(humidity) > 3, 'humidity varies over days');
  const pressureSensor = createSimulatedSensor({ name: 'p', quantity: 'pressure', seed: 4 });
  assert.is((await pressureSensor.read(START_MS))[0]!.u, 'Pa');
  const pressure = await series(pressureSensor, HOUR_MS, 24 * 14);
  assert.ok(Math.min(...pressure) > 95_000 && Math.max(...pressure) < 106_000, 'sea-level pressure range in Pa');
  assert.ok(sd(pressure) > 100, 'weather systems move the pressure');
});

test('simulated pulse counter: total never decreases, rate near the configured mean', async () => {
  const sensor = createSimulatedSensor({ name: 'water', quantity: 'pulse', seed: 5 });
  let previous = -1;
  for (let i = 0; i < 600; i++) {
    const [total, rate] = await sensor.read(START_MS + i * 1000);
    assert.is(total!.n, 'total');
    assert.is(total!.u, 'count');
    assert.is(rate!.u, '/s');
    assert.ok(total!.v! >= previous);
    previous = total!.v!;
  }
  assert.ok(previous > 200 && previous < 400, `about 0.5 pulses/s over 600 s, got ${previous}`);
});

test('the same seed gives the same series; another seed a different one', async () => {
  const a = await series(createSimulatedSensor({ name: 'x', quantity: 'temperature', seed: 9 }), 1000, 20);
  const b = await series(createSimulatedSensor({ name: 'x', quantity: 'temperature', seed: 9 }), 1000, 20);
  const c = await series(createSimulatedSensor({ name: 'x', quantity: 'temperature', seed: 10 }), 1000, 20);
  assert.equal(a, b);
  assert.not.equal(a, c);
});

test('health counts reads and failures', async () => {
  const sensor = createSimulatedSensor({ name: 'flaky', quantity: 'temperature', seed: 6, failureRate: 0.5 });
  let failures = 0;
  for (let i = 0; i < 100; i++) await sensor.read(START_MS + i).catch(() => failures++);
  const health = sensor.health();
  assert.is(health.failures, failures);
  assert.is(health.reads, 100 - failures);
  assert.ok(failures > 20 && failures < 80);
});

test('sampler: one pack per tick with sensor-prefixed names; a failing sensor costs only its own records', async () => {
  const lines: string[] = [];
  const sampler = new Sampler({
    intervalMs: 1000,
    sensors: [
      { sensor: createSimulatedSensor({ name: 'air', quantity: 'temperature', seed: 1 }), intervalMs: 1000 },
      { sensor: createSimulatedSensor({ name: 'broken', quantity: 'humidity', seed: 1, failureRate: 1 }), intervalMs: 1000 },
      { sensor: createSimulatedSensor({ name: 'meter', quantity: 'pulse', seed: 1 }), intervalMs: 1000 },
    ],
    log: createLogger({ sink: { write: (l) => lines.push(l) } }),
  });
  const pack = await sampler.tick(START_MS);
  assert.ok(pack);
  assert.is(pack.time, START_MS / 1000);
  assert.equal(pack.records.map((r) => r.n), ['air', 'meter/total', 'meter/rate']);
  assert.is(lines.length, 1);
  assert.match(lines[0]!, /sensor broken \(simulated\/humidity\) read failed/);
  await sampler.tick(START_MS + 1000);
  assert.is(lines.length, 1, 'repeated failures are rate-limited in the log');
});

test('sampler: a sensor with a longer interval is read only when due; a hung sensor times out', async () => {
  const hung: Sensor = {
    name: 'hung', kind: 'test', start: async () => {}, stop: async () => {},
    read: () => new Promise(() => {}),
    health: () => ({ ok: false, reads: 0, failures: 0, causes: {} }),
  };
  const sampler = new Sampler({
    intervalMs: 100,
    sensors: [
      { sensor: createSimulatedSensor({ name: 'fast', quantity: 'temperature' }), intervalMs: 100 },
      { sensor: createSimulatedSensor({ name: 'slow', quantity: 'pressure' }), intervalMs: 300 },
      { sensor: hung, intervalMs: 100 },
    ],
    log: silentLogger,
  });
  const names: string[][] = [];
  for (let i = 0; i < 6; i++) names.push((await sampler.tick(START_MS + i * 100))!.records.map((r) => r.n));
  assert.equal(names, [['fast', 'slow'], ['fast'], ['fast'], ['fast', 'slow'], ['fast'], ['fast']]);
});

test.run();
