// Logging through a tiny interface; the backend writes lines journald understands:
// under systemd (stderr is the stream JOURNAL_STREAM names) each line starts with a
// <priority> prefix (sd-daemon(3)), and journald adds the time itself.
import { fstatSync } from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  child(namespace: string): Logger;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const SYSLOG_PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

export interface LogSink {
  write(line: string): void;
}

export function createLogger(options: { level?: LogLevel; namespace?: string; sink?: LogSink } = {}): Logger {
  const level = options.level ?? 'info';
  const sink = options.sink ?? { write: (line: string) => process.stderr.write(line + '\n') };
  const journald = stderrIsJournal();
  const make = (namespace: string): Logger => {
    const emit = (at: LogLevel, message: string) => {
      if (RANK[at] < RANK[level]) return;
      if (journald) {
        // Every line of a multi-line message keeps the priority (journald reads lines).
        const prefix = `<${SYSLOG_PRIORITY[at]}>`;
        sink.write(`${prefix}${namespace}: ${message.replaceAll('\n', `\n${prefix}`)}`);
      } else {
        sink.write(`${new Date().toISOString()} ${at.padEnd(5)} ${namespace}: ${message}`);
      }
    };
    return {
      debug: (m) => emit('debug', m),
      info: (m) => emit('info', m),
      warn: (m) => emit('warn', m),
      error: (m) => emit('error', m),
      child: (name) => make(`${namespace}/${name}`),
    };
  };
  return make(options.namespace ?? 'iop-agent');
}

/**
 * systemd.exec(5): JOURNAL_STREAM is the device and inode (`dev:ino`) of the stream it
 * connected stdout/stderr to. A process whose stderr was redirected elsewhere inherits the
 * variable too, so only a stderr that is that very stream counts.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  if (!env.JOURNAL_STREAM) return false;
  try {
    const stat = fstatSync(2);
    return `${stat.dev}:${stat.ino}` === env.JOURNAL_STREAM;
  } catch {
    return false;
  }
}

export const silentLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child: () => silentLogger,
};
