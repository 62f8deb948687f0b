import { CONFIG_HELP, CONFIG_OPTIONS, type Command } from '../command.ts';
import { openBox } from '../box.ts';
import { IopError } from '../errors.ts';
import { openOutput } from '../output.ts';
import { configFromFlags, integerOption, requireOption } from './options.ts';

const MAX_EMPTY_TICKS = 10;

export const sampleCommand: Command = {
  name: 'sample',
  summary: 'sign N readings from the configured sensors into a file, without network',
  usage: 'iop-agent sample --count N --out FILE [--state-dir DIR]',
  help: `  -n, --count N         number of signed messages, one per tick reading every sensor
  -o, --out FILE        CBOR sequence (RFC 8742) of COSE_Sign1 messages; '-' for stdout
      --wait MS         pause between ticks (default 0: as fast as the sensors answer)
${CONFIG_HELP}
The messages are part of the box's chain and stay in its store, so the gateway sees no gap.`,
  options: { ...CONFIG_OPTIONS, count: { type: 'string', short: 'n' }, out: { type: 'string', short: 'o' }, wait: { type: 'string' } },
  async run(context) {
    requireOption(context, 'count');
    const count = integerOption(context, 'count', { min: 1, max: 10_000_000 })!;
    const out = requireOption(context, 'out');
    const waitMs = integerOption(context, 'wait', { min: 0, max: 86_400_000 }) ?? 0;
    const { config } = configFromFlags(context);
    const box = await openBox(config, context.log);
    const output = openOutput(out, context.stdout);
    let first: number | undefined;
    let last: number | undefined;
    let written = 0;
    try {
      let emptyTicks = 0;
      while (written < count && !context.signal.aborted) {
        const pack = await box.sampler.tick(Date.now(), { all: true });
        if (!pack) {
          if (++emptyTicks >= MAX_EMPTY_TICKS) throw new IopError('INPUT', `no sensor gave a reading in ${MAX_EMPTY_TICKS} ticks in a row`);
          continue;
        }
        emptyTicks = 0;
        const message = await box.record(pack);
        // Written only after the store committed it: the file never holds a message the chain lacks.
        await output.write(message.bytes);
        first ??= message.seq;
        last = message.seq;
        written++;
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    } finally {
      await output.close();
      await box.close();
    }
    context.log.info(`wrote ${written} messages (seq ${first ?? '-'}..${last ?? '-'}) of device ${box.identity.id} to ${out}`);
    return context.signal.aborted ? 1 : 0;
  },
};
