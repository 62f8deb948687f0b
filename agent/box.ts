// Opens what a box command needs from its configuration: identity, journal, sensors.
import { createSimulatedSensor } from '../sensors/simulated.ts';
import { seedFromText } from '../sensors/random.ts';
import type { Sensor } from '../sensors/sensor.ts';
import type { DeviceIdentity } from './codec/identity.ts';
import { encodeSenmlPack, type SenmlPack } from './codec/senml.ts';
import type { Config, SensorConfig } from './config/schema.ts';
import type { DeviceKey } from './identity/device-key.ts';
import { loadDeviceKey } from './identity/software-key.ts';
import type { Logger } from './log.ts';
import { Sampler } from './sampler.ts';
import { assertWritable, ensureStateDir } from './state-dir.ts';
import { Journal, type StoredMessage } from './store/journal.ts';

export interface Box {
  identity: DeviceIdentity;
  key: DeviceKey;
  journal: Journal;
  sensors: Sensor[];
  sampler: Sampler;
  /** Encodes one tick's pack, signs it into the chain and stores it. */
  record(pack: SenmlPack): Promise<StoredMessage>;
  close(): Promise<void>;
}

/** `device` varies the simulated series from box to box. */
export function createSensor(config: SensorConfig, device: string): Sensor {
  switch (config.type) {
    case 'simulated':
      return createSimulatedSensor({ ...config, seed: config.seed ?? seedFromText(`${device}/${config.name}`) });
  }
}

export async function openBox(config: Config, log: Logger): Promise<Box> {
  ensureStateDir(config.stateDir);
  const { key, identity, created } = loadDeviceKey(config.stateDir, { create: true });
  if (created) log.info(`created device key; device id ${identity.id}`);
  assertWritable(config.stateDir);
  const journal = Journal.open(config.stateDir, identity, key, { maxMessages: config.store.maxMessages });
  const sensors = config.sensors.map((sensor) => createSensor(sensor, identity.id));
  await Promise.all(sensors.map((s) => s.start()));
  const sampler = new Sampler({
    intervalMs: config.sampling.intervalMs,
    baseName: config.sampling.baseName,
    sensors: sensors.map((sensor, i) => ({ sensor, intervalMs: config.sensors[i]!.intervalMs ?? config.sampling.intervalMs })),
    log: log.child('sampler'),
  });
  return {
    identity,
    key,
    journal,
    sensors,
    sampler,
    record: (pack) => journal.append(encodeSenmlPack(pack), Math.round(pack.time * 1000)),
    async close() {
      await sampler.stop();
      await Promise.all(sensors.map((s) => s.stop()));
      journal.close();
    },
  };
}
