// A box's answers to the data jobs the gateway allocates it (docs/rewards.md, section 5):
// on its retained `iop/v1/<id>/jobs` topic; each job answered once on `jobs/answer`. A box
// whose sampler can be told accepts a job when a sensor of its gives the quantity and the
// job's interval is no shorter than the sampler's tick (the box's power limit: it never
// reads anything faster), and reads that sensor at the job's interval while the job is
// on its list; without a sampler, only when a sensor already samples that often. Declined
// jobs carry the reason.
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

/** What the box's sampler lets a job change: one sensor's interval (undefined: back to its own). */
export interface JobSampler {
  readonly tickMs: number;
  setSensorIntervalMs(name: string, intervalMs: number | undefined): void;
}

interface SessionLike {
  on(event: 'connect', listener: (client: MqttClient) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
}

export function answerJobs(session: SessionLike, options: { device: string; sensors: readonly BoxSensorOffer[]; log: Logger; sampler?: JobSampler; nowS?: () => number }): void {
  const topic = `${TOPIC_ROOT}/${options.device}/jobs`;
  const nowS = options.nowS ?? (() => Date.now() / 1000);
  const answered = new Set<string>();
  /** accepted jobs: the sensor serving each, at which interval, until when */
  const accepted = new Map<string, { sensor: string; intervalMs: number; to: number }>();
  /** Each sensor at the shortest interval of the jobs it serves that are still on the list and running, else its own. */
  const resample = (listed: ReadonlySet<string>) => {
    if (!options.sampler) return;
    const now = nowS();
    for (const [id, job] of accepted) if (!listed.has(id) || job.to <= now) accepted.delete(id);
    for (const sensor of options.sensors) {
      const asked = Math.min(...[...accepted.values()].filter((j) => j.sensor === sensor.name).map((j) => j.intervalMs));
      options.sampler.setSensorIntervalMs(sensor.name, asked < sensor.intervalMs ? asked : undefined);
    }
  };
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
    const listed = new Set<string>();
    for (const job of jobs) {
      let result;
      try {
        result = answerFor(job, options.sensors, nowS(), options.sampler?.tickMs);
      } catch (err) {
        options.log.warn(`a job on ${topic} ignored: ${(err as Error).message}`);
        continue;
      }
      listed.add(result.job);
      if (result.answer.accept && result.sensor) accepted.set(result.job, { sensor: result.sensor, intervalMs: result.answer.intervalS * 1000, to: result.to });
      if (answered.has(result.job)) continue;
      answered.add(result.job);
      options.log.info(`job ${result.job}: ${result.answer.accept ? 'accepted' : `declined (${result.answer.reason})`}`);
      void client?.publishAsync(`${topic}/answer`, JSON.stringify({ job: result.job, ...result.answer }), { qos: 1 })
        .catch((err: unknown) => options.log.warn(`answer to job ${result.job} not sent: ${(err as Error).message}`));
    }
    resample(listed);
  });
}
