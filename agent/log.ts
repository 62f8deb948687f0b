// Logging through a tiny interface; the backend writes lines journald understands:
// under systemd (JOURNAL_STREAM set) each line starts with a <priority> prefix.
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
  const journald = Boolean(process.env.JOURNAL_STREAM);
  const make = (namespace: string): Logger => {
    const emit = (at: LogLevel, message: string) => {
      if (RANK[at] < RANK[level]) return;
      const prefix = journald ? `<${SYSLOG_PRIORITY[at]}>` : `${new Date().toISOString()} ${at.padEnd(5)} `;
      sink.write(`${prefix}${namespace}: ${message}`);
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

export const silentLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child: () => silentLogger,
};
