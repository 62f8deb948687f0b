// From a sensor's configuration (its `type`) to the driver that reads it. Adding a
// sensor type means one file in sensors/ and one line here (and its schema in agent/config).
import type { Sysfs } from '../drivers/sysfs.ts';
import type { UartOpener } from '../drivers/serial/uart-sensor-port.ts';
import type { GpioProvider } from '../drivers/gpio/line.ts';
import { createDs18b20Sensor, type Ds18b20Options } from './ds18b20.ts';
import { createGpsSensor, type GpsPosition, type GpsTimeFix } from './gps.ts';
import { createIioSensor, type IioOptions } from './iio.ts';
import { createPms5003Sensor, type Pms5003Options } from './pms5003.ts';
import { createSds011Sensor } from './sds011.ts';
import { createSimulatedSensor, type SimulatedSensorOptions } from './simulated.ts';
import { createGpioInputSensor, createPulseSensor, type GpioInputOptions, type PulseOptions } from './gpio-sensors.ts';
import type { UartSensorOptions } from './uart-sensor.ts';
import type { Sensor } from './sensor.ts';
import { seedFromText } from './random.ts';

export type SensorOptions =
  | ({ type: 'simulated' } & SimulatedSensorOptions)
  | ({ type: 'ds18b20' } & Ds18b20Options)
  | ({ type: 'iio' } & IioOptions)
  | ({ type: 'pms5003' } & Pms5003Options)
  | ({ type: 'sds011' } & UartSensorOptions)
  | ({ type: 'gps' } & UartSensorOptions)
  | ({ type: 'pulse' } & PulseOptions)
  | ({ type: 'gpio-input' } & GpioInputOptions);

export type SensorType = SensorOptions['type'];

export interface SensorContext {
  /** The device id: varies the simulated series from box to box. */
  device: string;
  sysfs: Sysfs;
  /** Where sensors keep what must survive a restart (pulse totals). */
  stateDir: string;
  openUart: UartOpener;
  /** The GPIO path, chosen on first use. */
  gpio: () => Promise<GpioProvider>;
  /** Monotonic milliseconds. */
  monotonic: () => number;
  /** A GPS with a valid fix reports the satellites' time here. */
  onGpsTime?: ((fix: GpsTimeFix) => void) | undefined;
  /** A GPS with a fix reports the box's position here. */
  onGpsPosition?: ((position: GpsPosition) => void) | undefined;
}

type Factories = { [K in SensorType]: (config: Extract<SensorOptions, { type: K }>, context: SensorContext) => Sensor };

const factories: Factories = {
  simulated: (config, context) => createSimulatedSensor({ ...config, seed: config.seed ?? seedFromText(`${context.device}/${config.name}`) }),
  ds18b20: (config, context) => createDs18b20Sensor(config, context.sysfs),
  iio: (config, context) => createIioSensor(config, context.sysfs),
  pms5003: (config, context) => createPms5003Sensor(config, context),
  sds011: (config, context) => createSds011Sensor(config, context),
  gps: (config, context) => createGpsSensor(config, { ...context, onTime: context.onGpsTime, onPosition: context.onGpsPosition }),
  pulse: (config, context) => createPulseSensor(config, { provider: context.gpio, stateDir: context.stateDir, monotonic: context.monotonic }),
  'gpio-input': (config, context) => createGpioInputSensor(config, context.gpio),
};

export const SENSOR_TYPES = Object.keys(factories) as SensorType[];

export function createSensor(config: SensorOptions, context: SensorContext): Sensor {
  const factory = factories[config.type] as (config: SensorOptions, context: SensorContext) => Sensor;
  return factory(config, context);
}
