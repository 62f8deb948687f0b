// The hardware: and sensors: parts of the configuration: the example is valid as
// written (with its defaults), and mistakes are errors naming the sensor and the field.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { validateConfig } from '../agent/config/load.ts';
import { IopError } from '../agent/errors.ts';
import { SENSOR_TYPES } from '../sensors/registry.ts';
import { configSchema } from '../agent/config/schema.ts';

const EXAMPLE = `
hardware:
  sysfsRoot: /
sensors:
  - { type: ds18b20, name: soil, id: 28-0316a2794aff }
  - { type: iio, name: air, device: bme280, channels: [temperature, humidity, pressure] }
  - { type: pms5003, name: pm, path: /dev/ttyAMA0 }
  - { type: sds011, name: pm2, path: /dev/ttyUSB1 }
  - { type: gps, name: position, path: /dev/ttyACM0, baud: 9600 }
  - { type: pulse, name: rain, chip: gpiochip0, line: 17, edge: falling, debounceMs: 20, factor: 0.2794, unit: mm }
  - { type: gpio-input, name: door, chip: gpiochip0, line: 27, bias: pull-up }
`;

function problems(yaml: string): string[] {
  try {
    validateConfig(parse(yaml), 'test.yaml');
  } catch (err) {
    assert.instance(err, IopError);
    return ((err as IopError & { details?: { problems?: string[] } }).message.split('\n').slice(1)).map((l) => l.trim());
  }
  throw new Error('expected the configuration to be rejected');
}

test('the issue\'s example configuration is valid, with defaults filled in', () => {
  const config = validateConfig(parse(EXAMPLE), 'example.yaml');
  assert.equal(config.hardware, { sysfsRoot: '/', gpio: 'auto' });
  assert.equal(config.sensors.map((s) => s.type), ['ds18b20', 'iio', 'pms5003', 'sds011', 'gps', 'pulse', 'gpio-input']);
  const rain = config.sensors[5]!;
  assert.equal(rain, { type: 'pulse', name: 'rain', chip: 'gpiochip0', line: 17, edge: 'falling', debounceMs: 20, factor: 0.2794, unit: 'mm', maxHz: 100, stuckMs: 60_000 });
});

test('every sensor type the registry knows has a schema, and the other way round', () => {
  const schemaTypes = configSchema.shape.sensors.unwrap().element.options.map((o) => o.shape.type.value);
  assert.equal([...schemaTypes].sort(), [...SENSOR_TYPES].sort());
});

test('mistakes name the sensor and the field', () => {
  assert.equal(problems(`
sensors:
  - { type: ds18b20, name: soil, id: 28-xyz }
  - { type: iio, name: air, device: bme280, channels: [temperature, ozone] }
  - { type: pms5003, name: pm, path: ttyAMA0, baud: 9601 }
  - { type: pulse, name: rain, chip: gpiochip0, line: -1, edge: sideways }
  - { type: gpio-input, name: door, chip: gpiochip0, line: 27, bias: up }
  - { type: thermometer, name: t }
`), [
    'sensors[0].id: expected a DS18B20 id: 28- and 12 hex digits',
    'sensors[1].channels[1]: expected one of "temperature"|"humidity"|"pressure"',
    'sensors[2].path: expected a device path such as /dev/ttyAMA0',
    'sensors[2].baud: expected a standard baud rate (1200..115200)',
    'sensors[3].line: Too small: expected number to be >=0',
    'sensors[3].edge: expected one of "rising"|"falling"|"both"',
    'sensors[4].bias: expected one of "pull-up"|"pull-down"|"disable"|"as-is"',
    "sensors[5].type: expected one of 'simulated', 'ds18b20', 'iio', 'pms5003', 'sds011', 'gps', 'pulse', 'gpio-input'",
  ]);
  assert.equal(problems('hardware: { sysfsRoot: /, gpio: magic, extra: 1 }'), [
    'hardware.gpio: expected one of "auto"|"sysfs"|"chardev"',
    'hardware.extra: unknown field',
  ]);
});

test.run();
