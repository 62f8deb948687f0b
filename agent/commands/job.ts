import { readFile } from 'node:fs/promises';
import mqtt from 'mqtt';
import { CONFIG_HELP, CONFIG_OPTIONS, stringOption, type Command } from '../command.ts';
import { parseJob } from '../contribution/jobs.ts';
import { IopError, errorMessage } from '../errors.ts';
import { loadDeviceKey } from '../identity/software-key.ts';
import { signJson } from '../pairing/signed-json.ts';
import { configFromFlags } from './options.ts';

export const jobCommand: Command = {
  name: 'job',
  summary: 'sign a data job with this key (a job issuer\'s) and post it to the gateway',
  usage: 'iop-agent job post FILE --broker URL [--state-dir DIR]',
  help: `      --broker URL      MQTT broker (or uplink.broker in the config)
${CONFIG_HELP}
FILE is the job as JSON: {"id", "quantity": {"name", "unit"}, "area": {"h3": [cells]} or
{"box": {"south", "west", "north", "east"}}, "intervalS", "from", "to", "rewardPerSlot"}
(docs/rewards.md, section 5). It is signed with the key in the state dir and published
retained on iop/v1/jobs/<id>; the gateway takes it when this key's id is among its
--job-issuer ids ('iop-agent id --state-dir DIR' prints it).`,
  options: { ...CONFIG_OPTIONS, broker: { type: 'string' } },
  positionals: { min: 2, max: 2 },
  async run(context) {
    const [verb, file] = context.positionals as [string, string];
    if (verb !== 'post') throw new IopError('USAGE', `job knows 'post', not '${verb}'`);
    const { config } = configFromFlags(context);
    const broker = stringOption(context, 'broker') ?? config.uplink.broker;
    if (!broker) throw new IopError('USAGE', '--broker is required (or uplink.broker in the config)');
    let job;
    try {
      job = parseJob(JSON.parse(await readFile(file, 'utf8')), file);
    } catch (err) {
      throw new IopError('USAGE', errorMessage(err));
    }
    const { key, identity } = loadDeviceKey(config.stateDir, { create: false });
    const signed = await signJson(identity, key, job);
    const client = await mqtt.connectAsync(broker, { reconnectPeriod: 0, connectTimeout: 10_000 });
    try {
      await client.publishAsync(`iop/v1/jobs/${job.id}`, Buffer.from(signed), { qos: 1, retain: true });
    } finally {
      await client.endAsync();
    }
    context.stdout.write(`job ${job.id} posted by ${identity.id}\n`);
    return 0;
  },
};
