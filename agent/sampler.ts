// Reads the sensors on a fixed tick and turns each tick into one SenML pack. A sensor
// with a longer interval is read only on the ticks where it is due. A failing or hung
// sensor costs its own records, never the tick.
import type { Sensor, SensorRecord } from '../sensors/sensor.ts';
import type { SenmlPack, SenmlRecord } from './codec/senml.ts';
import type { Logger } from './log.ts';
import type { TimeStamp } from './time/time-keeper.ts';

export interface ScheduledSensor {
  sensor: Sensor;
  intervalMs: number;
}

export interface SamplerOptions {
  intervalMs: number;
  sensors: ScheduledSensor[];
  baseName?: string | undefined;
  log: Logger;
  /**
   * Says at each tick whether the wall clock is trusted. Without it (tests, simulator)
   * the tick time given to tick() is the pack time.
   */
  time?: { stamp(): TimeStamp } | undefined;
}

const FAILURE_LOG_EVERY_MS = 60_000;

export class Sampler {
  private readonly lastRead = new Map<Sensor, number>();
  private readonly lastFailureLog = new Map<Sensor, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  /** The last pack had no trusted time: the next trusted one also carries uptime and boot. */
  private untrustedBefore = false;
  private readonly disabled = new Set<string>();
  /** per-sensor intervals a data job asked for, over the configured ones */
  private readonly jobIntervals = new Map<string, number>();

  private readonly options: SamplerOptions;

  constructor(options: SamplerOptions) {
    this.options = options;
  }

  /** Reads every due sensor (every sensor with `all`) once; undefined when no sensor produced a record. */
  async tick(nowMs: number, { all = false } = {}): Promise<SenmlPack | undefined> {
    const due = this.options.sensors.filter(({ sensor, intervalMs: configured }) => {
      if (this.disabled.has(sensor.name)) return false;
      const intervalMs = this.jobIntervals.get(sensor.name) ?? configured;
      const last = this.lastRead.get(sensor);
      if (all) return true;
      // Half a tick of slack so timer jitter does not push a sensor to the next tick.
      // A clock set backwards makes every sensor due rather than none for the jump's length.
      return last === undefined || nowMs < last || nowMs - last >= intervalMs - this.options.intervalMs / 2;
    });
    const timeoutMs = Math.max(50, Math.min(this.options.intervalMs, 5_000));
    // One deadline for the whole tick: a sensor that has not answered by then is a failure.
    let timer: NodeJS.Timeout | undefined;
    const results: SenmlRecord[][] = due.map(() => []);
    const answered: boolean[] = due.map(() => false);
    const reads = due.map(({ sensor }, index) => {
      this.lastRead.set(sensor, nowMs);
      let read: Promise<SensorRecord[]>;
      try {
        read = sensor.read(nowMs);
      } catch (err) {
        read = Promise.reject(err);
      }
      return read.then(
        (records) => {
          answered[index] = true;
          results[index] = records.map((r): SenmlRecord => ({ ...r, n: r.n ? `${sensor.name}/${r.n}` : sensor.name }));
        },
        (err: unknown) => {
          answered[index] = true;
          this.logFailure(sensor, err, nowMs);
        },
      );
    });
    await Promise.race([
      Promise.all(reads),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); }),
    ]);
    clearTimeout(timer);
    due.forEach(({ sensor }, index) => {
      if (!answered[index]) this.logFailure(sensor, new Error(`${sensor.name}: no answer within ${timeoutMs} ms`), nowMs);
    });
    const records = results.flat();
    if (records.length === 0) return undefined;
    return { ...this.packTime(nowMs), records, ...(this.options.baseName ? { baseName: this.options.baseName } : {}) };
  }

  /**
   * The pack's time fields. Untrusted: no `time`, only uptime, boot and quality none.
   * The first trusted pack after untrusted ones carries uptime and boot as well: it
   * anchors the earlier packs of that boot to true time (docs/protocol.md, "Time").
   */
  private packTime(nowMs: number): Pick<SenmlPack, 'time' | 'timeQuality' | 'uptime' | 'boot'> {
    if (!this.options.time) return { time: nowMs / 1000 };
    const stamp = this.options.time.stamp();
    if (stamp.wallMs === undefined) {
      this.untrustedBefore = true;
      return { timeQuality: 'none', uptime: stamp.uptimeS, boot: stamp.boot };
    }
    const anchor = this.untrustedBefore;
    this.untrustedBefore = false;
    return {
      time: stamp.wallMs / 1000,
      timeQuality: stamp.quality,
      ...(anchor ? { uptime: stamp.uptimeS, boot: stamp.boot } : {}),
    };
  }

  /** Changes the tick period from the next tick on (an owner's remote command). */
  setIntervalMs(intervalMs: number): void {
    this.options.intervalMs = intervalMs;
  }

  get tickMs(): number {
    return this.options.intervalMs;
  }

  /** A data job's interval for one sensor (never faster than the tick); undefined: its configured one again. */
  setSensorIntervalMs(name: string, intervalMs: number | undefined): void {
    if (intervalMs === undefined) this.jobIntervals.delete(name);
    else this.jobIntervals.set(name, Math.max(intervalMs, this.options.intervalMs));
  }

  /** Stops or resumes reading one sensor; false if no sensor has that name. */
  setEnabled(name: string, enabled: boolean): boolean {
    if (!this.options.sensors.some(({ sensor }) => sensor.name === name)) return false;
    if (enabled) this.disabled.delete(name);
    else this.disabled.add(name);
    return true;
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
