// Reads and validates the configuration file, reporting every problem at once with
// the file, the field path and what was expected.
import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type * as z from 'zod';
import { IopError, errorMessage } from '../errors.ts';
import { configSchema, type Config } from './schema.ts';

export const DEFAULT_CONFIG_FILES = ['/etc/iop-agent/config.yaml', '/etc/iop-agent/config.json'];

export interface ConfigSource {
  /** --config, or IOP_AGENT_CONFIG; when absent the first existing default file, else built-in defaults. */
  path?: string | undefined;
  /** Flag overrides, applied after the file. */
  overrides?: { stateDir?: string | undefined; intervalMs?: number | undefined; broker?: string | undefined };
}

export interface LoadedConfig {
  config: Config;
  /** Where it came from, for messages: a file path or 'built-in defaults'. */
  origin: string;
}

export function loadConfig(source: ConfigSource = {}): LoadedConfig {
  const path = source.path ?? (process.env.IOP_AGENT_CONFIG || undefined) ?? DEFAULT_CONFIG_FILES.find((file) => existsSync(file));
  const raw = path === undefined ? {} : readConfigFile(path);
  const origin = path ?? 'built-in defaults';
  const config = validateConfig(raw, origin);
  const { stateDir, intervalMs, broker } = source.overrides ?? {};
  if (stateDir !== undefined) config.stateDir = stateDir;
  if (broker !== undefined) config.uplink.broker = broker;
  if (intervalMs !== undefined) {
    config.sampling.intervalMs = intervalMs;
    return { config: validateConfig(config, `${origin} with --interval`), origin };
  }
  return { config, origin };
}

export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new IopError('CONFIG', `cannot read config file ${path}: ${errorMessage(err)}`, { path });
  }
  try {
    const value = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text, { prettyErrors: true, uniqueKeys: true });
    return value ?? {};
  } catch (err) {
    throw new IopError('CONFIG', `${path}: not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${errorMessage(err).split('\n')[0]}`, { path });
  }
}

export function validateConfig(raw: unknown, origin: string): Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new IopError('CONFIG', `${origin}: expected a mapping of settings at the top level`, { path: origin });
  }
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => describeIssue(issue));
  throw new IopError('CONFIG', `${origin}: invalid configuration:\n  ${problems.join('\n  ')}`, { path: origin, problems });
}

export function describeIssue(issue: z.core.$ZodIssue): string {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown field`).join('\n  ');
  }
  if (issue.code === 'invalid_union' && 'discriminator' in issue) {
    return `${path}: expected one of ${(issue as { options?: unknown[] }).options?.map((o) => `'${String(o)}'`).join(', ') ?? 'the known types'}`;
  }
  const message = issue.message.replace(/^Invalid (input|option|string): /, '');
  return `${path || '(top level)'}: ${message}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part)), '');
}
