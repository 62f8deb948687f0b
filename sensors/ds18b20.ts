// DS18B20 on the kernel's 1-Wire bus (overlay w1-gpio). w1_slave holds two lines: the
// nine scratchpad bytes with the kernel's CRC verdict (`crc=xx YES|NO`), then the same
// bytes and `t=<millidegrees C>`. 85000 is the power-on value: the conversion never ran.
import type { Sysfs } from '../drivers/sysfs.ts';
import { SysfsError } from '../drivers/sysfs.ts';
import { checkRange, HealthCounter, SensorError, type Sensor } from './sensor.ts';

export interface Ds18b20Options {
  name: string;
  /** 1-Wire id, e.g. 28-0316a2794aff; optional when exactly one DS18B20 is present. */
  id?: string | undefined;
}

const DEVICES = 'sys/bus/w1/devices';
const POWER_ON_MILLI = 85_000;
const ID = /^28-[0-9a-f]{12}$/;

/** Parses w1_slave text to degrees Celsius; throws SensorError for CRC NO, 85000 and garbage. */
export function parseW1Slave(sensor: string, text: string): number {
  const [first = '', second = ''] = text.split('\n');
  const crc = /crc=[0-9a-f]{2} (YES|NO)\s*$/i.exec(first);
  if (!crc) throw new SensorError(sensor, 'io', `unreadable w1_slave: ${JSON.stringify(first.slice(0, 60))}`);
  if (crc[1] !== 'YES') throw new SensorError(sensor, 'crc', 'CRC NO (a bad contact or a long wire)');
  const t = /t=(-?\d+)\s*$/.exec(second);
  if (!t) throw new SensorError(sensor, 'io', `no t= in w1_slave: ${JSON.stringify(second.slice(0, 60))}`);
  const milli = Number(t[1]);
  if (milli === POWER_ON_MILLI) throw new SensorError(sensor, 'power-on', '85000 power-on value (the conversion did not run: power or timing)');
  return checkRange(sensor, 'temperature', milli / 1000, -55, 125);
}

export function createDs18b20Sensor(options: Ds18b20Options, sysfs: Sysfs): Sensor {
  const health = new HealthCounter();
  const name = options.name;
  if (options.id !== undefined && !ID.test(options.id)) throw new Error(`sensor ${name}: id '${options.id}' is not a DS18B20 id (28- and 12 hex digits)`);

  const deviceId = async (): Promise<string> => {
    if (options.id) return options.id;
    const ids = (await sysfs.list(DEVICES)).filter((entry) => ID.test(entry));
    if (ids.length === 1) return ids[0]!;
    if (ids.length === 0) throw new SensorError(name, 'missing', `no DS18B20 under ${sysfs.path(DEVICES)}`);
    throw new SensorError(name, 'missing', `${ids.length} DS18B20s (${ids.join(', ')}): name one with id`);
  };

  return {
    name,
    kind: 'ds18b20',
    async start() {},
    async stop() {},
    read: (nowMs) => health.track(nowMs, async () => {
      const id = await deviceId();
      let text: string;
      try {
        text = await sysfs.read(`${DEVICES}/${id}/w1_slave`);
      } catch (err) {
        if (err instanceof SysfsError) throw new SensorError(name, err.code === 'ENOENT' ? 'missing' : 'io', err.message);
        throw err;
      }
      return [{ n: '', u: 'Cel', v: parseW1Slave(name, text) }];
    }),
    health: () => health.snapshot(),
  };
}
