// Reads the sensors on a fixed tick and turns each tick into one SenML pack. A sensor
// with a longer interval is read only on the ticks where it is due. A failing or hung
// sensor costs its own records, never the tick.
import type { Sensor } from '../sensors/sensor.ts';
import type { SenmlPack, SenmlRecord } from './codec/senml.ts';
import type { Logger } from './log.ts';

export interface ScheduledSensor {
  sensor: Sensor;
  intervalMs: number;
}

export interface SamplerOptions {
  intervalMs: number;
  sensors: ScheduledSensor[];
  baseName?: string | undefined;
  log: Logger;
}

const FAILURE_LOG_EVERY_MS = 60_000;

export class Sampler {
  private readonly lastRead = new Map<Sensor, number>();
  private readonly lastFailureLog = new Map<Sensor, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  private readonly options: SamplerOptions;

  constructor(options: SamplerOptions) {
    this.options = options;
  }

  /** Reads every due sensor (every sensor with `all`) once; undefined when no sensor produced a record. */
  async tick(nowMs: number, { all = false } = {}): Promise<SenmlPack | undefined> {
    const due = this.options.sensors.filter(({ sensor, intervalMs }) => {
      const last = this.lastRead.get(sensor);
      if (all) return true;
      // Half a tick of slack so timer jitter does not push a sensor to the next tick.
      return last === undefined || nowMs - last >= intervalMs - this.options.intervalMs / 2;
    });
    const timeoutMs = Math.max(50, Math.min(this.options.intervalMs, 5_000));
    const results = await Promise.all(due.map(async ({ sensor }) => {
      this.lastRead.set(sensor, nowMs);
      try {
        const records = await withTimeout(sensor.read(nowMs), timeoutMs, `${sensor.name}: no answer within ${timeoutMs} ms`);
        return records.map((r): SenmlRecord => ({ ...r, n: r.n ? `${sensor.name}/${r.n}` : sensor.name }));
      } catch (err) {
        this.logFailure(sensor, err, nowMs);
        return [];
      }
    }));
    const records = results.flat();
    if (records.length === 0) return undefined;
    return { time: nowMs / 1000, records, ...(this.options.baseName ? { baseName: this.options.baseName } : {}) };
  }

  /** Ticks until stop(), aligned to multiples of the interval; a slow tick skips ticks rather than piling them up. */
  start(onPack: (pack: SenmlPack) => Promise<void>): void {
    this.stopped = false;
    const schedule = () => {
      if (this.stopped) return;
      const interval = this.options.intervalMs;
      this.timer = setTimeout(run, interval - (Date.now() % interval));
    };
    const run = () => {
      this.running = (async () => {
        const pack = await this.tick(Date.now());
        if (pack && !this.stopped) await onPack(pack);
      })().catch((err) => this.options.log.error(`tick failed: ${err instanceof Error ? err.message : String(err)}`))
        .finally(() => {
          this.running = undefined;
          schedule();
        });
    };
    schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private logFailure(sensor: Sensor, err: unknown, nowMs: number): void {
    const last = this.lastFailureLog.get(sensor);
    if (last !== undefined && nowMs - last < FAILURE_LOG_EVERY_MS) return;
    this.lastFailureLog.set(sensor, nowMs);
    const health = sensor.health();
    this.options.log.warn(`sensor ${sensor.name} (${sensor.kind}) read failed: ${err instanceof Error ? err.message : String(err)} (${health.failures} failures so far)`);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
