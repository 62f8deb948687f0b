// CPU cost of reading the full sensor set once per tick (DS18B20, a BME280 over
// IIO, PMS5003, SDS011, GPS, a pulse counter and a door contact), next to the cost of
// signing one reading, in one run. Sysfs sensors read a fixture tree (the same syscalls
// as on a box); UART sensors get one frame per tick through an in-process port (the
// parsing is what costs; the bytes come from the kernel either way); GPIO through a
// provider that reads a value file as onoff does. CPU is process.cpuUsage over all
// threads (libuv's pool does the file reads). Also: one gpioget spawn, the cost of a
// level read on the character-device path, with the recorded fake tool.
// Usage: node bench/sensors.ts [--quick] [--json]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sampler } from '../agent/sampler.ts';
import { silentLogger } from '../agent/log.ts';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import { signNext } from '../agent/signer.ts';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import type { ChainLink } from '../agent/codec/chain.ts';
import { Sysfs } from '../drivers/sysfs.ts';
import type { UartHandlers, UartOpener } from '../drivers/serial/uart-sensor-port.ts';
import type { GpioProvider } from '../drivers/gpio/line.ts';
import { encodePms5003Frame } from '../drivers/uart-sensors/pms5003.ts';
import { encodeSds011Frame } from '../drivers/uart-sensors/sds011.ts';
import { nmeaSentence } from '../drivers/uart-sensors/nmea.ts';
import { createSensor, type SensorContext, type SensorOptions } from '../sensors/registry.ts';
import { FixtureSysfs } from '../test/helpers/fixture-sysfs.ts';

const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');
const TICKS = quick ? 300 : 3000;
const dir = mkdtempSync(join(tmpdir(), 'iop-bench-sensors-'));

try {
  const fixture = new FixtureSysfs(join(dir, 'root'));
  fixture.ds18b20('28-0316a2794aff', 18_312);
  fixture.iio(0, 'bme280', { in_temp_input: '21370', in_humidityrelative_input: '48213', in_pressure_input: '101.325' });
  fixture.file('gpio/door-value', '1\n');

  const ports = new Map<string, UartHandlers>();
  const openUart: UartOpener = async (path, _baud, handlers) => {
    ports.set(path, handlers);
    return { write: async () => {}, close: async () => {} };
  };
  let edges: ((e: { level: 0 | 1; monotonicMs: number }) => void) | undefined;
  const gpio: GpioProvider = {
    backend: 'sysfs', reason: 'bench',
    read: async () => (readFileSync(join(fixture.root, 'gpio/door-value'), 'utf8').trim() === '1' ? 1 : 0),
    watch: async (_spec, _edge, onEdge) => { edges = onEdge; return { armed: () => true, close: async () => {} }; },
    close: async () => {},
  };
  let mono = 0;
  const context: SensorContext = {
    device: 'bench', sysfs: new Sysfs(fixture.root), stateDir: join(dir, 'state'), openUart,
    gpio: async () => gpio, monotonic: () => mono,
  };
  const configs: SensorOptions[] = [
    { type: 'ds18b20', name: 'soil', id: '28-0316a2794aff' },
    { type: 'iio', name: 'air', device: 'bme280', channels: ['temperature', 'humidity', 'pressure'] },
    { type: 'pms5003', name: 'pm', path: '/dev/ttyAMA0' },
    { type: 'sds011', name: 'pm2', path: '/dev/ttyUSB1' },
    { type: 'gps', name: 'position', path: '/dev/ttyACM0' },
    { type: 'pulse', name: 'rain', chip: 'gpiochip0', line: 17, edge: 'falling', debounceMs: 20, factor: 0.2794, unit: 'mm' },
    { type: 'gpio-input', name: 'door', chip: 'gpiochip0', line: 27, bias: 'pull-up' },
  ];
  const sensors = configs.map((c) => createSensor(c, context));
  await Promise.all(sensors.map((s) => s.start()));
  const sampler = new Sampler({ intervalMs: 1000, log: silentLogger, sensors: sensors.map((sensor) => ({ sensor, intervalMs: 1000 })) });
  const pms = encodePms5003Frame({ pm1: 4, pm25: 9, pm10: 15 });
  const sds = encodeSds011Frame({ pm25: 8.4, pm10: 17.9 });
  const gps = Buffer.from(nmeaSentence('GNGGA,101530.00,5230.1234,N,01324.5678,E,1,09,0.9,34.5,M,40.1,M,,')
    + nmeaSentence('GNRMC,101530.00,A,5230.1234,N,01324.5678,E,0.0,0.0,011226,,,A'));

  /** What arrives on the wires in one second, then one tick. */
  const tick = async (i: number) => {
    mono = i * 1000;
    ports.get('/dev/ttyAMA0')!.onData(pms);
    ports.get('/dev/ttyUSB1')!.onData(sds);
    ports.get('/dev/ttyACM0')!.onData(gps);
    edges?.({ level: 0, monotonicMs: mono });
    edges?.({ level: 1, monotonicMs: mono + 200 });
    const pack = await sampler.tick(Date.UTC(2026, 11, 1) + i * 1000, { all: true });
    if (!pack || pack.records.length !== 17) throw new Error(`tick ${i}: ${pack?.records.length ?? 0} records, expected 17`);
    return pack;
  };

  const cpuPer = async (count: number, op: (i: number) => Promise<unknown>): Promise<number> => {
    for (let i = 0; i < Math.min(50, count); i++) await op(i); // warm-up
    const start = process.cpuUsage();
    for (let i = 0; i < count; i++) await op(i + 100);
    const used = process.cpuUsage(start);
    return (used.user + used.system) / 1000 / count;
  };

  const readMs = await cpuPer(TICKS, tick);
  const { key, identity } = loadDeviceKey(join(dir, 'state'), { create: true });
  const payload = encodeSenmlPack(await tick(0));
  let head: ChainLink | undefined;
  const signMs = await cpuPer(TICKS, async () => {
    const signed = await signNext(key, identity, head, payload);
    head = { seq: signed.seq, hash: signed.hash };
  });
  process.env.FAKE_GPIO_DIR = dir;
  execFileSync('sh', ['-c', `echo 1 > ${dir}/level-27`]);
  const fake = join(import.meta.dirname, '..', 'test', 'fixtures', 'fake-gpiod', 'gpioget');
  const spawnMs = await cpuPer(quick ? 20 : 200, async () => execFileSync(fake, ['gpiochip0', '27']));
  await Promise.all(sensors.map((s) => s.stop()));

  const result = {
    ticks: TICKS,
    sensors: configs.length,
    records: 17,
    readCpuMsPerTick: round(readMs),
    signCpuMsPerReading: round(signMs),
    readOverSign: round(readMs / signMs),
    gpiogetSpawnCpuMs: round(spawnMs),
    goalMs: 2,
    met: readMs < 2,
  };
  if (json) console.log(JSON.stringify(result));
  else {
    console.log(`reading ${configs.length} sensors (17 records) per tick: ${result.readCpuMsPerTick} ms CPU (goal < 2 ms: ${result.met ? 'met' : 'NOT met'})`);
    console.log(`signing one reading (SenML + COSE + chain):  ${result.signCpuMsPerReading} ms CPU`);
    console.log(`ratio read/sign: ${result.readOverSign}`);
    console.log(`one gpioget spawn (character-device level read, parent side): ${result.gpiogetSpawnCpuMs} ms CPU`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
