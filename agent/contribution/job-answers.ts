// A box's answers to the data jobs the gateway allocates it (docs/rewards.md, section 5):
// on its retained `iop/v1/<id>/jobs` topic; each job answered once on `jobs/answer`,
// accepted when a sensor of the box gives the quantity at least as often as the job asks,
// declined with the reason otherwise.
import type { MqttClient } from 'mqtt';
import type { Logger } from '../log.ts';
import { TOPIC_ROOT } from '../uplink/topics.ts';
import type { BoxSensorOffer } from './job-answer.ts';

// The job logic imports h3-js (the job's area cells), megabytes of memory: a box loads
// it when its first job arrives, not at start.
let logic: Promise<typeof import('./job-answer.ts')> | undefined;
const loadLogic = () => (logic ??= import('./job-answer.ts'));

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
    void loadLogic().then(({ answerFor }) => {
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
    }, (err: unknown) => options.log.warn(`jobs on ${topic} not answered: ${(err as Error).message}`));
  });
}
