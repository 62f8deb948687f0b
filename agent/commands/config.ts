import { CONFIG_HELP, CONFIG_OPTIONS, type Command } from '../command.ts';
import { configFromFlags } from './options.ts';

export const configCommand: Command = {
  name: 'config',
  summary: 'check the configuration and print it with defaults filled in',
  usage: 'iop-agent config [--config FILE]',
  help: CONFIG_HELP,
  options: { ...CONFIG_OPTIONS },
  async run(context) {
    const { config, origin } = configFromFlags(context);
    context.log.info(`configuration from ${origin} is valid`);
    context.stdout.write(JSON.stringify(config, null, 2) + '\n');
    return 0;
  },
};
