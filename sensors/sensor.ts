// What every sensor driver implements. A read yields SenML records (RFC 8428) with
// names relative to the sensor and SenML units; the sampler prefixes the sensor's name.

export interface SensorRecord {
  /** Name relative to the sensor: '' for a sensor with one quantity. */
  n: string;
  /** SenML unit from the SenML units registry. */
  u?: string;
  v?: number;
  vs?: string;
  vb?: boolean;
  s?: number;
}

export interface SensorHealth {
  ok: boolean;
  reads: number;
  failures: number;
  /** Unix ms of the last successful read */
  lastReadMs?: number;
  lastError?: string;
  /** Failures by cause (missing, crc, power-on, io, silent, checksum, range, stuck, chatter, ...). */
  causes: Record<string, number>;
}

export interface Sensor {
  readonly name: string;
  /** The driver, e.g. 'simulated/temperature' or 'ds18b20'. */
  readonly kind: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Sensors that follow a line's edges (pulse counters, watched inputs): true once no
   * edge can be missed any more (the watch is armed). Absent for sensors read on demand.
   */
  armed?(): boolean;
  /** Rejects when the hardware did not give a value; the sampler counts and logs it. */
  read(nowMs: number): Promise<SensorRecord[]>;
  health(): SensorHealth;
}

/** Keeps the counts every sensor reports in health(). */
export class HealthCounter {
  private state: SensorHealth = { ok: true, reads: 0, failures: 0, causes: {} };

  success(nowMs: number): void {
    this.state = { ...this.state, ok: true, reads: this.state.reads + 1, lastReadMs: nowMs };
  }

  failure(error: unknown): void {
    const cause = error instanceof SensorError ? error.failure : 'error';
    const causes = { ...this.state.causes, [cause]: (this.state.causes[cause] ?? 0) + 1 };
    this.state = { ...this.state, ok: false, failures: this.state.failures + 1, causes, lastError: error instanceof Error ? error.message : String(error) };
  }

  snapshot(): SensorHealth {
    return { ...this.state, causes: { ...this.state.causes } };
  }

  /** Runs one read: counts its success or its failure, and passes the failure on. */
  async track(nowMs: number, read: () => Promise<SensorRecord[]>): Promise<SensorRecord[]> {
    try {
      const records = await read();
      this.success(nowMs);
      return records;
    } catch (err) {
      this.failure(err);
      throw err;
    }
  }
}

/** Why a read gave no value; the status and the logs group failures by it. */
export type SensorFailure =
  | 'missing' | 'io' | 'crc' | 'power-on' | 'range' | 'silent' | 'checksum' | 'no-fix' | 'stuck' | 'chatter' | 'error';

/** A read that gave no value, naming the sensor and the cause. */
export class SensorError extends Error {
  override name = 'SensorError';
  readonly sensor: string;
  readonly failure: SensorFailure;
  constructor(sensor: string, failure: SensorFailure, detail: string) {
    super(`${sensor}: ${failure}: ${detail}`);
    this.sensor = sensor;
    this.failure = failure;
  }
}

/** Physical ranges of the parts; a value outside is a fault (a bad wire, a bad read), not weather. */
export function checkRange(sensor: string, what: string, value: number, min: number, max: number): number {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new SensorError(sensor, 'range', `${what} ${value} outside ${min}..${max}`);
  }
  return value;
}
