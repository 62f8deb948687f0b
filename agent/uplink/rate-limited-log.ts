// The same error every few seconds for hours helps nobody: say it once, then once a
// period with how often it recurred.
import type { Logger } from '../log.ts';

export class RateLimitedLog {
  private readonly seen = new Map<string, { lastMs: number; repeats: number }>();
  private readonly log: Logger;
  private readonly periodMs: number;

  constructor(log: Logger, periodMs = 60_000) {
    this.log = log;
    this.periodMs = periodMs;
  }

  /** Messages with the same key count as the same problem (default: the message itself). */
  error(message: string, key = message, nowMs = Date.now()): void {
    const entry = this.seen.get(key);
    if (entry && nowMs - entry.lastMs < this.periodMs) {
      entry.repeats++;
      return;
    }
    const repeats = entry?.repeats ?? 0;
    this.seen.set(key, { lastMs: nowMs, repeats: 0 });
    this.log.error(repeats > 0 ? `${message} (${repeats} more times since last said)` : message);
  }

  clear(): void {
    this.seen.clear();
  }
}
