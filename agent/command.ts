// The shape every subcommand has, and the options several of them share.
import type { ParseArgsOptionsConfig } from 'node:util';
import type { Logger } from './log.ts';

export interface CommandContext {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  log: Logger;
  stdout: NodeJS.WritableStream;
  /** Aborted on SIGINT/SIGTERM; long-running commands stop cleanly on it. */
  signal: AbortSignal;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Option lines for --help, beyond the shared ones. */
  help: string;
  options: ParseArgsOptionsConfig;
  positionals?: { min: number; max: number };
  run(context: CommandContext): Promise<number>;
}

export const CONFIG_OPTIONS: ParseArgsOptionsConfig = {
  config: { type: 'string', short: 'c' },
  'state-dir': { type: 'string' },
};

export const CONFIG_HELP = `  -c, --config FILE     configuration file (YAML or JSON); default /etc/iop-agent/config.yaml if present
      --state-dir DIR   state directory (device key, store); default /var/lib/iop-agent`;

export function stringOption(context: CommandContext, name: string): string | undefined {
  const value = context.values[name];
  return typeof value === 'string' ? value : undefined;
}
