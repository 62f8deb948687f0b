// A box's answer to one data job, by its sensors (docs/rewards.md, section 5): accepted
// when a sensor gives the quantity and the job's interval is one the box can sample at,
// declined with the reason otherwise.
import { answerJob, parseJob, type JobAnswer } from './jobs.ts';

export interface BoxSensorOffer {
  /** the sensor's name (its SenML record name) and driver kind ('simulated/temperature', 'ds18b20', ...) */
  name: string;
  kind: string;
  intervalMs: number;
}

/** What drivers measure, where the kind does not say it. */
const KIND_QUANTITIES: Record<string, readonly string[]> = {
  ds18b20: ['temperature'], pms5003: ['pm1', 'pm2.5', 'pm10'], sds011: ['pm2.5', 'pm10'],
};

function measures(sensor: BoxSensorOffer, quantity: string): boolean {
  return sensor.name === quantity || sensor.kind.split('/').pop() === quantity || (KIND_QUANTITIES[sensor.kind]?.includes(quantity) ?? false);
}

/**
 * The box's answer to one job, by its sensors, and the sensor that serves it (the one
 * sampling fastest). `tickMs`: the sampler's tick when it can speed a sensor up to the
 * job's interval; without it, a sensor must already sample that often.
 */
export function answerFor(job: unknown, sensors: readonly BoxSensorOffer[], nowS: number, tickMs?: number): { job: string; answer: JobAnswer; sensor?: string; to: number } {
  const parsed = parseJob(job);
  const able = sensors.filter((s) => measures(s, parsed.quantity.name)).sort((a, b) => a.intervalMs - b.intervalMs);
  if (able.length === 0) return { job: parsed.id, answer: { accept: false, reason: `no sensor of ${parsed.quantity.name}` }, to: parsed.to };
  const limitS = (tickMs ?? able[0]!.intervalMs) / 1000;
  return { job: parsed.id, answer: answerJob(parsed, { quantities: [parsed.quantity], minIntervalS: limitS, nowS }), sensor: able[0]!.name, to: parsed.to };
}
