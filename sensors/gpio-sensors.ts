// Sensors on one GPIO line: a pulse counter (rain gauge, anemometer, water or power
// meter) and a plain input (door contact, float switch).
//
// The pulse counter counts edges with a debounce, keeps its total in the state dir so
// a restart continues it, and reports the total, the pulses and the amount per interval.
// A chattering line (more edges than `maxHz` allows in an interval) or a stuck one (at
// the active level for longer than `stuckMs`) is a failure for that interval: its edges
// are not counted, because they are noise, not rain.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bias, Edge, GpioProvider, Level, LineSpec, LineWatch } from '../drivers/gpio/line.ts';
import { HealthCounter, SensorError, type Sensor, type SensorRecord } from './sensor.ts';

export interface GpioLineOptions {
  name: string;
  chip: string;
  line: number;
  bias?: Bias | undefined;
}

export interface PulseOptions extends GpioLineOptions {
  edge?: Edge | undefined;
  debounceMs?: number | undefined;
  /** Amount per pulse, in `unit` (a rain gauge: 0.2794 mm). */
  factor?: number | undefined;
  unit?: string | undefined;
  /** More edges per second than this is chatter. */
  maxHz?: number | undefined;
  /** At the active level longer than this: stuck. */
  stuckMs?: number | undefined;
}

export interface GpioInputOptions extends GpioLineOptions {
  /** The line reads 0 when the contact is closed (pull-up wiring): report true for 0. */
  activeLow?: boolean | undefined;
}

export interface PulseContext {
  provider: () => Promise<GpioProvider>;
  stateDir: string;
  monotonic: () => number;
}

interface PulseState {
  total: number;
}

function lineSpec(options: GpioLineOptions): LineSpec {
  return { chip: options.chip, line: options.line, bias: options.bias };
}

/** The total survives restarts: written atomically (temp file, rename) when it changes. */
class PulseStore {
  private readonly path: string;
  private saved: number;

  constructor(stateDir: string, name: string) {
    const dir = join(stateDir, 'pulse');
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${name}.json`);
    this.saved = 0;
    try {
      const state = JSON.parse(readFileSync(this.path, 'utf8')) as PulseState;
      if (Number.isSafeInteger(state.total) && state.total >= 0) this.saved = state.total;
    } catch {
      // first start, or a torn file from before atomic writes: start from zero
    }
  }

  get total(): number {
    return this.saved;
  }

  save(total: number): void {
    if (total === this.saved) return;
    const temp = `${this.path}.tmp`;
    writeFileSync(temp, JSON.stringify({ total } satisfies PulseState));
    renameSync(temp, this.path);
    this.saved = total;
  }
}

export function createPulseSensor(options: PulseOptions, context: PulseContext): Sensor {
  const health = new HealthCounter();
  const name = options.name;
  const edge = options.edge ?? 'falling';
  const debounceMs = options.debounceMs ?? 10;
  const factor = options.factor ?? 1;
  const unit = options.unit ?? 'count';
  const maxHz = options.maxHz ?? 100;
  const stuckMs = options.stuckMs ?? 60_000;
  // The level a counted edge leaves the line at; `both` has none.
  const activeLevel: Level | undefined = edge === 'falling' ? 0 : edge === 'rising' ? 1 : undefined;
  const store = new PulseStore(context.stateDir, name);
  let total = store.total;
  let pending = 0;
  let edgesThisInterval = 0;
  let lastEdgeMs = -Infinity;
  let level: Level | undefined;
  let levelSinceMs = context.monotonic();
  let intervalStartMs = context.monotonic();
  let watch: LineWatch | undefined;
  let watchError: Error | undefined;

  /** Counts one pulse (the configured edge) at `atMs`, after debounce. */
  const countEdge = (atMs: number): void => {
    edgesThisInterval++;
    if (atMs - lastEdgeMs < debounceMs) return;
    lastEdgeMs = atMs;
    pending++;
  };

  /**
   * Watches the line; resolves once the watch is armed. A failure (no GPIO path, no such
   * chip) is reported by reads, which try again.
   */
  const begin = async (): Promise<void> => {
    try {
      const provider = await context.provider();
      // The level before the first edge, so that the first release is judged right too.
      // The character device's watch holds the line (gpioget is refused then): read
      // before it; on sysfs read the watched line after, leaving no gap.
      const readLevel = async () => { level ??= await provider.read(lineSpec(options)).catch(() => undefined); };
      if (provider.backend === 'chardev') await readLevel();
      // Both edges, always: the releases tell the level, which a stuck line is judged by.
      watch = await provider.watch(lineSpec(options), 'both', (event) => {
        watchError = undefined;
        const previous = level;
        // Stuck is judged on our own clock, which reads use; debounce on the edges' timestamps.
        if (event.level !== level) { level = event.level; levelSinceMs = context.monotonic(); }
        if (activeLevel === undefined || event.level === activeLevel) return countEdge(event.monotonicMs);
        // A release while the line was already released: the press came and went before
        // the backend looked (sysfs reports only that the value changed, and reads it
        // when the agent gets to it, late on a busy box): one whole pulse.
        if (previous === event.level) countEdge(event.monotonicMs);
      }, (error) => { watchError = error; });
      if (provider.backend !== 'chardev') await readLevel();
    } catch (err) {
      watchError = err instanceof Error ? err : new Error(String(err));
    }
  };

  return {
    name,
    kind: 'pulse',
    start: begin,
    armed: () => watch?.armed() ?? false,
    async stop() {
      await watch?.close();
      store.save(total);
    },
    read: (nowMs) => health.track(nowMs, async () => {
      const now = context.monotonic();
      const seconds = Math.max(0.001, (now - intervalStartMs) / 1000);
      const edges = edgesThisInterval;
      const pulses = pending;
      intervalStartMs = now;
      edgesThisInterval = 0;
      pending = 0;
      if (!watch) {
        await begin();
        throw new SensorError(name, 'missing', `line not watched: ${watchError?.message ?? 'starting'}`);
      }
      // Judged over at least a second: a read just after start is no chatter.
      if (edges / Math.max(1, seconds) > maxHz) throw new SensorError(name, 'chatter', `${edges} edges in ${seconds.toFixed(1)} s (over ${maxHz} Hz): not counted`);
      if (activeLevel !== undefined && level === activeLevel && now - levelSinceMs > stuckMs) {
        throw new SensorError(name, 'stuck', `line at ${level} for ${Math.round((now - levelSinceMs) / 1000)} s`);
      }
      if (watchError && pulses === 0) throw new SensorError(name, 'io', watchError.message);
      total += pulses;
      store.save(total);
      const records: SensorRecord[] = [
        { n: 'total', u: unit, v: round(total * factor) },
        { n: 'count', u: 'count', v: total },
        { n: 'interval', u: unit, v: round(pulses * factor) },
        { n: 'rate', u: '/s', v: round(pulses / seconds) },
      ];
      return records;
    }),
    health: () => health.snapshot(),
  };
}

/**
 * On sysfs a read is one file read. On the character device a read is a gpioget
 * process, so after the first read the sensor follows the line with a gpiomon watch
 * (both edges) and answers from the last edge; a broken watch falls back to gpioget.
 */
export function createGpioInputSensor(options: GpioInputOptions, provider: () => Promise<GpioProvider>): Sensor {
  const health = new HealthCounter();
  const spec = lineSpec(options);
  let tracked: Level | undefined;
  let watch: LineWatch | undefined;
  let direct = false;

  const follow = async (gpio: GpioProvider, level: Level): Promise<void> => {
    tracked = level;
    watch = await gpio.watch(spec, 'both', (event) => { tracked = event.level; }, () => {
      // Not known any more: read it again (and watch again) at the next read.
      tracked = undefined;
      const broken = watch;
      watch = undefined;
      void broken?.close();
    });
  };

  const level = async (): Promise<Level> => {
    if (tracked !== undefined && watch) return tracked;
    const gpio = await provider();
    const now = await gpio.read(spec);
    direct = gpio.backend !== 'chardev';
    if (!direct && !watch) await follow(gpio, now);
    return now;
  };

  return {
    name: options.name,
    kind: 'gpio-input',
    // Read and, on the character device, watched from the start; a failure here is
    // reported by the reads, which try again.
    async start() {
      await level().catch(() => undefined);
    },
    // sysfs: every read is the line's level now; chardev: the watch follows it.
    armed: () => direct || (watch?.armed() ?? false),
    async stop() {
      await watch?.close();
      watch = undefined;
    },
    read: (nowMs) => health.track(nowMs, async () => {
      let value: Level;
      try {
        value = await level();
      } catch (err) {
        throw new SensorError(options.name, 'io', err instanceof Error ? err.message : String(err));
      }
      return [{ n: '', vb: options.activeLow ? value === 0 : value === 1 }];
    }),
    health: () => health.snapshot(),
  };
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
