// The last log lines, kept in memory for the console's `log N`. Long hex runs (64 digits
// or more: key material would look like this) are masked before a line is kept, so even
// a careless log message cannot carry a key out through the console.
import type { Logger, LogLevel } from '../log.ts';

const LONG_HEX = /(?:0x)?[0-9a-fA-F]{64,}/g;

export class LogRing {
  private readonly lines: string[] = [];
  private readonly capacity: number;

  constructor(capacity = 500) {
    this.capacity = capacity;
  }

  push(line: string): void {
    this.lines.push(line.replace(LONG_HEX, '[hex masked]').slice(0, 1000));
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
  }

  last(count: number): string[] {
    return this.lines.slice(-count);
  }
}

/** A logger that logs through `log` and keeps a copy of each line in `ring`. */
export function teeLogger(log: Logger, ring: LogRing, namespace = ''): Logger {
  const emit = (level: LogLevel, message: string) => {
    log[level](message);
    if (level !== 'debug') ring.push(`${new Date().toISOString()} ${level.padEnd(5)} ${namespace ? namespace + ': ' : ''}${message}`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    child: (name) => teeLogger(log.child(name), ring, namespace ? `${namespace}/${name}` : name),
  };
}
