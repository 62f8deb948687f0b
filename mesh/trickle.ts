// Trickle-style timer (RFC 6206, simplified): the interval doubles from `minMs` up to
// `maxMs` while nothing changes and drops back to `minMs` on a change, so a quiet mesh
// is quiet and a changing one converges fast. Jitter keeps neighbours from colliding.
import type { Clock, TimerHandle } from '../drivers/clock.ts';

export class TrickleTimer {
  private readonly clock: Clock;
  private readonly minMs: number;
  private readonly maxMs: number;
  /** Called with the longest time until the next firing. */
  private readonly fire: (nextWithinMs: number) => void;
  private readonly random: () => number;
  /** the next firing comes between (1 - jitter) and 1 times the interval */
  private readonly jitter: number;
  private intervalMs: number;
  private timer: TimerHandle | undefined;
  /** when the scheduled firing comes */
  private dueAt = Infinity;
  private stopped = true;

  constructor(clock: Clock, minMs: number, maxMs: number, fire: (nextWithinMs: number) => void, random: () => number = Math.random, jitter = 0.25) {
    this.clock = clock;
    this.jitter = jitter;
    this.minMs = minMs;
    this.maxMs = maxMs;
    this.fire = fire;
    this.random = random;
    this.intervalMs = minMs;
  }

  /** The interval now in force: how long until the next firing at most. */
  get interval(): number {
    return this.intervalMs;
  }

  start(): void {
    this.stopped = false;
    this.schedule(this.random() * this.minMs);
  }

  stop(): void {
    this.stopped = true;
    this.dueAt = Infinity;
    this.clock.clearTimeout(this.timer);
  }

  /** Something changed: fire soon and start again from the shortest interval. */
  reset(): void {
    if (this.stopped) return;
    if (this.intervalMs === this.minMs && this.timer) return;
    this.intervalMs = this.minMs;
    this.clock.clearTimeout(this.timer);
    this.schedule(this.random() * this.minMs * 0.5);
  }

  /**
   * It fired by other means just now (a hello sent along with something else): the next
   * firing comes a whole interval from now, the interval unchanged.
   */
  postpone(): void {
    if (this.stopped) return;
    this.clock.clearTimeout(this.timer);
    this.schedule(this.intervalMs * (1 - this.jitter + this.jitter * this.random()));
  }

  /** Whether the next firing is due within `ms` from now. */
  dueWithin(ms: number): boolean {
    return !this.stopped && this.dueAt <= this.clock.now() + ms;
  }

  /**
   * What the next firing would send goes out now by other means (along with another
   * timer's frame): the interval grows as at a firing, and the next comes a whole
   * interval from now. The callback is not called.
   */
  firedElsewhere(): void {
    if (this.stopped) return;
    this.clock.clearTimeout(this.timer);
    this.intervalMs = Math.min(this.maxMs, this.intervalMs * 2);
    this.schedule(this.intervalMs * (1 - this.jitter + this.jitter * this.random()));
  }

  private schedule(delayMs: number): void {
    this.dueAt = this.clock.now() + delayMs;
    this.timer = this.clock.setTimeout(() => {
      if (this.stopped) return;
      // The firing announces the next interval: listeners know by when to expect the next one.
      this.intervalMs = Math.min(this.maxMs, this.intervalMs * 2);
      this.fire(this.intervalMs);
      this.schedule(this.intervalMs * (1 - this.jitter + this.jitter * this.random()));
    }, delayMs);
  }
}
