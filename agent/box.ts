// Opens what a box command needs from its configuration: identity, journal, sensors.
import { createSensor, type SensorContext } from '../sensors/registry.ts';
import type { Sensor } from '../sensors/sensor.ts';
import { Sysfs } from '../drivers/sysfs.ts';
import { openUartSensorPort } from '../drivers/serial/uart-sensor-port.ts';
import { selectGpioProvider } from '../drivers/gpio/select.ts';
import type { GpioProvider } from '../drivers/gpio/line.ts';
import type { GpsPosition } from '../sensors/gps.ts';
import type { DeviceIdentity } from './codec/identity.ts';
import { encodeSenmlPack, type SenmlPack } from './codec/senml.ts';
import type { Config } from './config/schema.ts';
import type { DeviceKey } from './identity/device-key.ts';
import { loadDeviceKey } from './identity/software-key.ts';
import type { Logger } from './log.ts';
import { Sampler } from './sampler.ts';
import { assertWritable, ensureStateDir } from './state-dir.ts';
import { Journal, type StoredMessage } from './store/journal.ts';
import { systemTimeSources, TimeKeeper } from './time/time-keeper.ts';

export interface Box {
  identity: DeviceIdentity;
  key: DeviceKey;
  journal: Journal;
  sensors: Sensor[];
  sampler: Sampler;
  time: TimeKeeper;
  /** The box's position from a GPS sensor with a fix, if it has one. */
  position(): GpsPosition | undefined;
  /** Encodes one tick's pack, signs it into the chain and stores it. */
  record(pack: SenmlPack): Promise<StoredMessage>;
  close(): Promise<void>;
}

export async function openBox(config: Config, log: Logger): Promise<Box> {
  ensureStateDir(config.stateDir);
  const { key, identity, created } = loadDeviceKey(config.stateDir, { create: true });
  if (created) log.info(`created device key; device id ${identity.id}`);
  assertWritable(config.stateDir);
  const journal = Journal.open(config.stateDir, identity, key, { maxMessages: config.store.maxMessages });
  const time = new TimeKeeper(systemTimeSources(config.hardware.sysfsRoot, log.child('time')), log.child('time'));
  const sysfs = new Sysfs(config.hardware.sysfsRoot);
  let gpio: Promise<GpioProvider> | undefined;
  let position: GpsPosition | undefined;
  const context: SensorContext = {
    device: identity.id,
    sysfs,
    stateDir: config.stateDir,
    openUart: openUartSensorPort,
    gpio: () => {
      gpio ??= selectGpioProvider(sysfs, config.hardware.gpio).then((provider) => {
        log.info(`GPIO through ${provider.backend}: ${provider.reason}`);
        return provider;
      });
      return gpio;
    },
    monotonic: () => performance.now(),
    onGpsTime: (fix) => time.gpsTime(fix),
    onGpsPosition: (fix) => { position = fix; },
  };
  const sensors = config.sensors.map((sensor) => createSensor(sensor, context));
  // A sensor that cannot start is reported by its reads; the others go on.
  await Promise.all(sensors.map((s) => s.start().catch((err: unknown) => log.warn(`sensor ${s.name} did not start: ${err instanceof Error ? err.message : String(err)}`))));
  // Edge-following sensors start armed when they can: say so, since edges before this
  // line (or on a sensor not armed) may be missed.
  const watching = sensors.filter((s) => s.armed !== undefined);
  if (watching.length > 0) {
    const armed = watching.filter((s) => s.armed!()).map((s) => s.name);
    const waiting = watching.filter((s) => !s.armed!()).map((s) => s.name);
    log.info(`sensors armed (no edge missed from now on): ${armed.join(', ') || 'none'}${waiting.length > 0 ? `; not armed: ${waiting.join(', ')} (retried at each read)` : ''}`);
  }
  const sampler = new Sampler({
    intervalMs: config.sampling.intervalMs,
    baseName: config.sampling.baseName,
    sensors: sensors.map((sensor, i) => ({ sensor, intervalMs: config.sensors[i]!.intervalMs ?? config.sampling.intervalMs })),
    log: log.child('sampler'),
    time,
  });
  return {
    identity,
    key,
    journal,
    sensors,
    sampler,
    time,
    position: () => position,
    // The store's own timestamp is bookkeeping; the reading's time is in the payload.
    record: (pack) => journal.append(encodeSenmlPack(pack), pack.time === undefined ? Date.now() : Math.round(pack.time * 1000)),
    async close() {
      await sampler.stop();
      await Promise.all(sensors.map((s) => s.stop()));
      if (gpio) await (await gpio.catch(() => undefined))?.close();
      journal.close();
    },
  };
}
