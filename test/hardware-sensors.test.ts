// 1-Wire and IIO sensors on fixture sysfs trees: values and units, and every failure
// (CRC NO, 85000, a vanished device, EIO, out of range) is local to its sensor and
// counted by cause; a device that comes back is read again without a restart.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sysfs } from '../drivers/sysfs.ts';
import { createDs18b20Sensor, parseW1Slave } from '../sensors/ds18b20.ts';
import { createIioSensor } from '../sensors/iio.ts';
import { SensorError } from '../sensors/sensor.ts';
import { Sampler } from '../agent/sampler.ts';
import { createLogger } from '../agent/log.ts';
import { FixtureSysfs } from './helpers/fixture-sysfs.ts';
import { sensorFailure as failure } from './helpers/sensor-failure.ts';

const root = mkdtempSync(join(tmpdir(), 'iop-sysfs-'));
const fixture = new FixtureSysfs(root);
const sysfs = new Sysfs(root);
const NOW = Date.UTC(2026, 11, 1);


test.after(() => rmSync(root, { recursive: true, force: true }));

test('w1_slave parsing: YES, NO, 85000, negative, garbage', () => {
  assert.is(parseW1Slave('s', '72 01 : crc=57 YES\n72 01 t=23125\n'), 23.125);
  assert.is(parseW1Slave('s', '72 01 : crc=57 YES\n72 01 t=-10062\n'), -10.062);
  for (const [text, cause] of [
    ['72 01 : crc=57 NO\n72 01 t=23125\n', 'crc'],
    ['50 05 : crc=e1 YES\n50 05 t=85000\n', 'power-on'],
    ['00 00 : crc=00 YES\n00 00 t=127000\n', 'range'],
    ['', 'io'],
    ['72 01 : crc=57 YES\n', 'io'],
  ] as const) {
    try {
      parseW1Slave('s', text);
      assert.unreachable(`${JSON.stringify(text)} should fail`);
    } catch (err) {
      assert.is((err as SensorError).failure, cause, text);
    }
  }
});

test('ds18b20: reads by id or the only one; CRC NO, 85000, vanishing and coming back', async () => {
  fixture.ds18b20('28-0316a2794aff', 21_562);
  const only = createDs18b20Sensor({ name: 'soil' }, sysfs);
  assert.equal(await only.read(NOW), [{ n: '', u: 'Cel', v: 21.562 }]);
  fixture.ds18b20('28-000000000002', 5_000);
  const ambiguous = await failure(only.read(NOW));
  assert.is(ambiguous.failure, 'missing');
  assert.match(ambiguous.message, /name one with id/);

  const soil = createDs18b20Sensor({ name: 'soil', id: '28-0316a2794aff' }, sysfs);
  assert.equal(await soil.read(NOW), [{ n: '', u: 'Cel', v: 21.562 }]);
  fixture.ds18b20('28-0316a2794aff', 21_000, 'NO');
  assert.is((await failure(soil.read(NOW))).failure, 'crc');
  fixture.ds18b20('28-0316a2794aff', 85_000);
  assert.is((await failure(soil.read(NOW))).failure, 'power-on');
  fixture.remove('sys/bus/w1/devices/28-0316a2794aff');
  const gone = await failure(soil.read(NOW));
  assert.is(gone.failure, 'missing');
  assert.match(gone.message, /soil/);
  fixture.eio('sys/bus/w1/devices/28-0316a2794aff/w1_slave');
  assert.is((await failure(soil.read(NOW))).failure, 'io');
  fixture.ds18b20('28-0316a2794aff', 19_250);
  assert.equal(await soil.read(NOW), [{ n: '', u: 'Cel', v: 19.25 }], 'used again once it is back');
  const health = soil.health();
  assert.is(health.reads, 2);
  assert.is(health.failures, 4);
  assert.equal(health.causes, { crc: 1, 'power-on': 1, missing: 1, io: 1 });
  assert.ok(health.ok);
  assert.throws(() => createDs18b20Sensor({ name: 'x', id: '../../etc' }, sysfs), /not a DS18B20 id/);
});

test('iio: bme280 by name in SenML units, raw×scale fallback, EIO retried once, out of range', async () => {
  fixture.iio(0, 'dht22', { in_temp_input: '19400', in_humidityrelative_input: '55300' });
  fixture.iio(1, 'bme280', { in_temp_input: '21370', in_humidityrelative_input: '48213', in_pressure_input: '101.325' });
  const air = createIioSensor({ name: 'air', device: 'bme280', channels: ['temperature', 'humidity', 'pressure'] }, sysfs);
  assert.equal(await air.read(NOW), [
    { n: 'temperature', u: 'Cel', v: 21.37 },
    { n: 'humidity', u: '%RH', v: 48.213 },
    { n: 'pressure', u: 'Pa', v: 101_325 },
  ]);
  const byIndex = createIioSensor({ name: 'dht', device: 'iio:device0', channels: ['humidity'] }, sysfs);
  assert.equal(await byIndex.read(NOW), [{ n: '', u: '%RH', v: 55.3 }]);

  fixture.iio(2, 'sht3x', { in_temp_raw: '1000', in_temp_offset: '-500', in_temp_scale: '40' });
  assert.equal(await createIioSensor({ name: 't', device: 'sht3x', channels: ['temperature'] }, sysfs).read(NOW), [{ n: '', u: 'Cel', v: 20 }]);

  fixture.eio('sys/bus/iio/devices/iio:device0/in_humidityrelative_input');
  const eio = await failure(byIndex.read(NOW));
  assert.is(eio.failure, 'io');
  assert.match(eio.message, /EIO/);

  fixture.iio(1, 'bme280', { in_pressure_input: '2000.0' });
  assert.is((await failure(air.read(NOW))).failure, 'range');
  fixture.file('sys/bus/iio/devices/iio:device1/in_pressure_input', 'garbage\n');
  assert.is((await failure(air.read(NOW))).failure, 'io');

  // The device goes away and comes back under another number: found again by name.
  fixture.remove('sys/bus/iio/devices/iio:device1');
  assert.is((await failure(air.read(NOW))).failure, 'missing');
  fixture.iio(3, 'bme280', { in_temp_input: '22000', in_humidityrelative_input: '50000', in_pressure_input: '99.5' });
  assert.equal((await air.read(NOW)).map((r) => r.v), [22, 50, 99_500]);
});

test('sysfs paths never leave the root', () => {
  assert.throws(() => sysfs.path('../../etc/passwd'), /leaves the sysfs root/);
  assert.is(sysfs.path('/sys/bus/w1'), join(root, 'sys/bus/w1'));
});

test('sampler: a failing sensor costs only its own records, logged with sensor and cause', async () => {
  fixture.ds18b20('28-0316a2794aff', 85_000);
  fixture.iio(3, 'bme280', { in_temp_input: '22000', in_humidityrelative_input: '50000', in_pressure_input: '99.5' });
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', sink: { write: (line: string) => { lines.push(line); } } });
  const sampler = new Sampler({
    intervalMs: 1000,
    log,
    sensors: [
      { sensor: createDs18b20Sensor({ name: 'soil', id: '28-0316a2794aff' }, sysfs), intervalMs: 1000 },
      { sensor: createIioSensor({ name: 'air', device: 'bme280', channels: ['temperature'] }, sysfs), intervalMs: 1000 },
    ],
  });
  const pack = await sampler.tick(NOW);
  assert.equal(pack!.records, [{ n: 'air', u: 'Cel', v: 22 }]);
  await sampler.tick(NOW + 1000);
  const warnings = lines.filter((l) => /soil/.test(l));
  assert.is(warnings.length, 1, 'rate-limited: one warning a minute');
  assert.match(warnings[0]!, /soil \(ds18b20\).*power-on/);
});

test.run();
