import { CONFIG_HELP, CONFIG_OPTIONS, type Command } from '../command.ts';
import { loadDeviceKey } from '../identity/software-key.ts';
import { Journal } from '../store/journal.ts';
import { openOutput } from '../output.ts';
import { configFromFlags, integerOption, requireOption } from './options.ts';

export const exportCommand: Command = {
  name: 'export',
  summary: 'write the stored signed messages as a CBOR sequence',
  usage: 'iop-agent export --out FILE [--from SEQ] [--state-dir DIR]',
  help: `  -o, --out FILE        CBOR sequence of COSE_Sign1 messages; '-' for stdout
      --from SEQ        first sequence number (default: the oldest still stored)
${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS, out: { type: 'string', short: 'o' }, from: { type: 'string' } },
  async run(context) {
    const out = requireOption(context, 'out');
    const from = integerOption(context, 'from', { min: 0, max: Number.MAX_SAFE_INTEGER }) ?? 0;
    const { config } = configFromFlags(context);
    const { key, identity } = loadDeviceKey(config.stateDir, { create: false });
    const journal = Journal.open(config.stateDir, identity, key);
    const output = openOutput(out, context.stdout);
    let count = 0;
    try {
      for (const message of journal.messages(from)) {
        await output.write(message.bytes);
        count++;
      }
    } finally {
      await output.close();
      journal.close();
    }
    context.log.info(`exported ${count} messages of device ${identity.id}`);
    return 0;
  },
};
