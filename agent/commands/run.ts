import { CONFIG_HELP, CONFIG_OPTIONS, type Command } from '../command.ts';
import { openBox } from '../box.ts';
import { configFromFlags } from './options.ts';

export const runCommand: Command = {
  name: 'run',
  summary: 'run the agent: sample, sign and store readings until stopped',
  usage: 'iop-agent run [--config FILE] [--state-dir DIR] [--interval MS]',
  help: `      --interval MS     sampling period (overrides sampling.intervalMs)
      --broker URL      MQTT broker (overrides uplink.broker)
${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS, interval: { type: 'string' }, broker: { type: 'string' } },
  async run(context) {
    const { config, origin } = configFromFlags(context);
    const log = context.log;
    const box = await openBox(config, log);
    log.info(`device ${box.identity.id}: ${box.sensors.length} sensors every ${config.sampling.intervalMs} ms; ` +
      `state dir ${config.stateDir}; config from ${origin}; ${box.journal.count()} messages stored`);
    box.sampler.start(async (pack) => {
      const message = await box.record(pack);
      log.debug(`stored seq ${message.seq} (${message.bytes.length} bytes, ${pack.records.length} records)`);
    });
    await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve(), { once: true }));
    log.info('stopping');
    await box.close();
    return 0;
  },
};
