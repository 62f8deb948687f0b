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
}

export interface Sensor {
  readonly name: string;
  /** The driver, e.g. 'simulated/temperature' or 'ds18b20'. */
  readonly kind: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Rejects when the hardware did not give a value; the sampler counts and logs it. */
  read(nowMs: number): Promise<SensorRecord[]>;
  health(): SensorHealth;
}

/** Keeps the counts every sensor reports in health(). */
export class HealthCounter {
  private state: SensorHealth = { ok: true, reads: 0, failures: 0 };

  success(nowMs: number): void {
    this.state = { ...this.state, ok: true, reads: this.state.reads + 1, lastReadMs: nowMs };
  }

  failure(error: unknown): void {
    this.state = { ...this.state, ok: false, failures: this.state.failures + 1, lastError: error instanceof Error ? error.message : String(error) };
  }

  snapshot(): SensorHealth {
    return { ...this.state };
  }
}
