// Sensors the kernel's IIO drivers read (bmp280/bme280, dht11/dht22, sht3x, ...). The
// device is named by its IIO name (`name` file) or as iio:deviceN; the numbering can
// change when a device comes back, so the name is resolved again after a failure.
// Units are the IIO ABI's: temperature in milli °C, relative humidity in milli %RH,
// pressure in kPa; a channel without _input is (raw + offset) × scale in those units.
import { SysfsError, type Sysfs } from '../drivers/sysfs.ts';
import { checkRange, HealthCounter, SensorError, type Sensor, type SensorRecord } from './sensor.ts';

export const IIO_CHANNELS = ['temperature', 'humidity', 'pressure'] as const;
export type IioChannel = (typeof IIO_CHANNELS)[number];

export interface IioOptions {
  name: string;
  /** IIO device name (e.g. bme280, dht22) or iio:deviceN. */
  device: string;
  channels: readonly IioChannel[];
}

interface ChannelSpec {
  attribute: string;
  unit: string;
  /** From the IIO unit to the SenML unit. */
  factor: number;
  min: number;
  max: number;
}

const SPECS: Record<IioChannel, ChannelSpec> = {
  temperature: { attribute: 'in_temp', unit: 'Cel', factor: 1 / 1000, min: -60, max: 130 },
  humidity: { attribute: 'in_humidityrelative', unit: '%RH', factor: 1 / 1000, min: 0, max: 100 },
  pressure: { attribute: 'in_pressure', unit: 'Pa', factor: 1000, min: 30_000, max: 110_000 },
};

const DEVICES = 'sys/bus/iio/devices';
/** DHT sensors fail often with EIO: the kernel times the pulses badly under load. */
const EIO_RETRIES = 1;

export function createIioSensor(options: IioOptions, sysfs: Sysfs): Sensor {
  const health = new HealthCounter();
  const name = options.name;
  let directory: string | undefined;

  const resolve = async (): Promise<string> => {
    if (/^iio:device\d+$/.test(options.device)) {
      if (!sysfs.exists(`${DEVICES}/${options.device}`)) throw new SensorError(name, 'missing', `no ${options.device} under ${sysfs.path(DEVICES)}`);
      return `${DEVICES}/${options.device}`;
    }
    for (const entry of await sysfs.list(DEVICES)) {
      if (!entry.startsWith('iio:device')) continue;
      const deviceName = await sysfs.readTrimmed(`${DEVICES}/${entry}/name`).catch(() => undefined);
      if (deviceName === options.device) return `${DEVICES}/${entry}`;
    }
    throw new SensorError(name, 'missing', `no IIO device named ${options.device} under ${sysfs.path(DEVICES)}`);
  };

  const number = async (path: string): Promise<number> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const text = await sysfs.readTrimmed(path);
        const value = Number(text);
        if (text === '' || !Number.isFinite(value)) throw new SensorError(name, 'io', `${sysfs.path(path)} holds '${text.slice(0, 40)}', not a number`);
        return value;
      } catch (err) {
        if (err instanceof SysfsError && err.code === 'EIO' && attempt < EIO_RETRIES) continue;
        if (err instanceof SysfsError) throw new SensorError(name, err.code === 'ENOENT' ? 'missing' : 'io', err.message);
        throw err;
      }
    }
  };

  const readChannel = async (dir: string, channel: IioChannel): Promise<SensorRecord> => {
    const spec = SPECS[channel];
    let iioValue: number;
    if (sysfs.exists(`${dir}/${spec.attribute}_input`)) {
      iioValue = await number(`${dir}/${spec.attribute}_input`);
    } else {
      const raw = await number(`${dir}/${spec.attribute}_raw`);
      const offset = sysfs.exists(`${dir}/${spec.attribute}_offset`) ? await number(`${dir}/${spec.attribute}_offset`) : 0;
      const scale = sysfs.exists(`${dir}/${spec.attribute}_scale`) ? await number(`${dir}/${spec.attribute}_scale`) : 1;
      iioValue = (raw + offset) * scale;
    }
    const value = checkRange(name, channel, round(iioValue * spec.factor), spec.min, spec.max);
    return { n: options.channels.length === 1 ? '' : channel, u: spec.unit, v: value };
  };

  return {
    name,
    kind: `iio/${options.device}`,
    async start() {},
    async stop() {},
    read: (nowMs) => health.track(nowMs, async () => {
      directory ??= await resolve();
      try {
        const records: SensorRecord[] = [];
        // One channel after the other: DHT drivers refuse a second read while one runs.
        for (const channel of options.channels) records.push(await readChannel(directory, channel));
        return records;
      } catch (err) {
        // The device may have come back as another iio:deviceN: look again next time.
        if (err instanceof SensorError && err.failure === 'missing') directory = undefined;
        throw err;
      }
    }),
    health: () => health.snapshot(),
  };
}

/** Six significant decimals are more than any of these parts resolve; this drops float dust. */
function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
