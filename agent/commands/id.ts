import { toHex } from '../codec/hex.ts';
import { CONFIG_HELP, CONFIG_OPTIONS, type Command } from '../command.ts';
import { loadDeviceKey } from '../identity/software-key.ts';
import { configFromFlags } from './options.ts';

export const idCommand: Command = {
  name: 'id',
  summary: 'print the device id and public key (makes the key on first use)',
  usage: 'iop-agent id [--state-dir DIR] [--json]',
  help: `      --json            one JSON object {"id", "publicKey"}\n${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS, json: { type: 'boolean' } },
  async run(context) {
    const { config } = configFromFlags(context);
    const { identity, created } = loadDeviceKey(config.stateDir, { create: true });
    if (created) context.log.info(`created device key in ${config.stateDir}`);
    const publicKey = toHex(identity.publicKey);
    context.stdout.write(context.values.json
      ? JSON.stringify({ id: identity.id, publicKey }) + '\n'
      : `id:         ${identity.id}\npublic key: ${publicKey} (${identity.scheme.name})\n`);
    return 0;
  },
};
