import { IopError } from '../errors.ts';
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import { stringOption, type CommandContext } from '../command.ts';

export function integerOption(context: CommandContext, name: string, limits: { min: number; max: number }): number | undefined {
  const text = stringOption(context, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < limits.min || value > limits.max) {
    throw new IopError('USAGE', `--${name} expects a whole number from ${limits.min} to ${limits.max}, got '${text}'`);
  }
  return value;
}

export function requireOption(context: CommandContext, name: string): string {
  const value = stringOption(context, name);
  if (value === undefined) throw new IopError('USAGE', `--${name} is required`);
  return value;
}

/** The configuration with the shared flags (--config, --state-dir, --interval, --broker) applied. */
export function configFromFlags(context: CommandContext): LoadedConfig {
  return loadConfig({
    path: stringOption(context, 'config'),
    overrides: {
      stateDir: stringOption(context, 'state-dir'),
      intervalMs: integerOption(context, 'interval', { min: 10, max: 86_400_000 }),
      broker: stringOption(context, 'broker'),
    },
  });
}
