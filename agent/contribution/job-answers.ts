// A box's answers to the data jobs the gateway allocates it (docs/rewards.md, section 5):
// on its retained `iop/v1/<id>/jobs` topic; each job answered once on `jobs/answer`,
// accepted when a sensor of the box gives the quantity at least as often as the job asks,
// declined with the reason otherwise.
import type { MqttClient } from 'mqtt';
import type { Logger } from '../log.ts';
import { TOPIC_ROOT } from '../uplink/topics.ts';
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

/** The box's answer to one job, by its sensors. */
export function answerFor(job: unknown, sensors: readonly BoxSensorOffer[], nowS: number): { job: string; answer: JobAnswer } {
  const parsed = parseJob(job);
  const able = sensors.filter((s) => measures(s, parsed.quantity.name));
  if (able.length === 0) return { job: parsed.id, answer: { accept: false, reason: `no sensor of ${parsed.quantity.name}` } };
  const fastest = Math.min(...able.map((s) => s.intervalMs)) / 1000;
  return { job: parsed.id, answer: answerJob(parsed, { quantities: [parsed.quantity], minIntervalS: fastest, nowS }) };
}

interface SessionLike {
  on(event: 'connect', listener: (client: MqttClient) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
}

export function answerJobs(session: SessionLike, options: { device: string; sensors: readonly BoxSensorOffer[]; log: Logger }): void {
  const topic = `${TOPIC_ROOT}/${options.device}/jobs`;
  const answered = new Set<string>();
  let client: MqttClient | undefined;
  session.on('connect', (c) => {
    client = c;
    c.subscribe(topic, { qos: 1 });
  });
  session.on('message', (t, payload) => {
    if (t !== topic || payload.length === 0) return;
    let jobs: unknown[];
    try {
      const parsed = JSON.parse(payload.toString('utf8')) as { jobs?: unknown };
      if (!Array.isArray(parsed.jobs)) throw new Error('no "jobs" array');
      jobs = parsed.jobs;
    } catch (err) {
      options.log.warn(`jobs on ${topic} ignored: ${(err as Error).message}`);
      return;
    }
    for (const job of jobs) {
      let result;
      try {
        result = answerFor(job, options.sensors, Date.now() / 1000);
      } catch (err) {
        options.log.warn(`a job on ${topic} ignored: ${(err as Error).message}`);
        continue;
      }
      if (answered.has(result.job)) continue;
      answered.add(result.job);
      options.log.info(`job ${result.job}: ${result.answer.accept ? 'accepted' : `declined (${result.answer.reason})`}`);
      void client?.publishAsync(`${topic}/answer`, JSON.stringify({ job: result.job, ...result.answer }), { qos: 1 })
        .catch((err: unknown) => options.log.warn(`answer to job ${result.job} not sent: ${(err as Error).message}`));
    }
  });
}
