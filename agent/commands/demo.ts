import { resolve } from 'node:path';
import { ReadingVerifier } from '../codec/verify.ts';
import type { ResolvedRecord } from '../codec/senml.ts';
import { CONFIG_HELP, CONFIG_OPTIONS, stringOption, type Command } from '../command.ts';
import { openBox } from '../box.ts';
import { loadConfig } from '../config/load.ts';
import { integerOption } from './options.ts';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'sample simulated sensors and print each reading as a consumer verifies it',
  usage: 'iop-agent demo [--state-dir DIR] [--interval MS] [--count N]',
  help: `      --interval MS     sampling period (default 1000)
      --count N         stop after N readings (default: until Ctrl-C)
${CONFIG_HELP.replace('/var/lib/iop-agent', './.demo-state')}`,
  options: { ...CONFIG_OPTIONS, interval: { type: 'string' }, count: { type: 'string' } },
  async run(context) {
    const count = integerOption(context, 'count', { min: 1, max: Number.MAX_SAFE_INTEGER });
    const { config } = loadConfig({
      path: stringOption(context, 'config'),
      overrides: {
        stateDir: resolve(stringOption(context, 'state-dir') ?? '.demo-state'),
        intervalMs: integerOption(context, 'interval', { min: 10, max: 86_400_000 }) ?? 1000,
      },
    });
    const box = await openBox(config, context.log);
    const verifier = new ReadingVerifier({ publicKey: box.identity.publicKey });
    context.stdout.write(`device ${box.identity.id}\nsampling ${box.sensors.map((s) => s.name).join(', ')} every ${config.sampling.intervalMs} ms; Ctrl-C stops\n`);
    let shown = 0;
    const done = new Promise<void>((resolveDone) => {
      context.signal.addEventListener('abort', () => resolveDone(), { once: true });
      box.sampler.start(async (pack) => {
        const message = await box.record(pack);
        // Verified from the stored bytes alone, as a consumer would.
        const reading = verifier.verify(message.bytes);
        context.stdout.write(`seq ${String(reading.seq).padStart(5)}  ${reading.valid ? 'signature ok' : 'SIGNATURE BAD'}  chain ${reading.chain.padEnd(5)}  ${reading.records.map(formatRecord).join('  ')}\n`);
        if (count !== undefined && ++shown >= count) resolveDone();
      });
    });
    await done;
    await box.close();
    return 0;
  },
};

function formatRecord(record: ResolvedRecord): string {
  const value = record.v ?? record.vs ?? record.vb ?? record.vd ?? record.s;
  return `${record.n}=${String(value)}${record.u ? ' ' + record.u : ''}`;
}
