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
import type { BoxSensorOffer } from './job-answer.ts';

// The job logic imports h3-js (the job's area cells), megabytes of memory: a box loads
// it when its first job list arrives, not at start.
let logic: Promise<typeof import('./job-answer.ts')> | undefined;
const loadLogic = () => (logic ??= import('./job-answer.ts'));

/** What the box's sampler lets a job change: one sensor's interval (undefined: back to its own). */
export interface JobSampler {
  readonly tickMs: number;
  setSensorIntervalMs(name: string, intervalMs: number | undefined): void;
}

interface SessionLike {
  on(event: 'connect', listener: (client: MqttClient) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
}

/** `settled()`: resolves once every job list received so far is answered. */
export function answerJobs(session: SessionLike, options: { device: string; sensors: readonly BoxSensorOffer[]; log: Logger; sampler?: JobSampler; nowS?: () => number }): { settled(): Promise<void> } {
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
  let chain: Promise<void> = Promise.resolve();
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
    // Lists are answered in the order they came, each once the logic is loaded.
    chain = chain.then(() => loadLogic()).then(({ answerFor }) => answerList(answerFor, jobs))
      .catch((err: unknown) => options.log.warn(`jobs on ${topic} not answered: ${(err as Error).message}`));
  });
  return { settled: () => chain };

  function answerList(answerFor: typeof import('./job-answer.ts').answerFor, jobs: unknown[]): void {
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
  }
}
