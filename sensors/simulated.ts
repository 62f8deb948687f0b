// Simulated sensors for the demo, the tests and the mesh simulator. Each value is a
// daily cycle (where the quantity has one), a slow mean-reverting drift
// (Ornstein-Uhlenbeck) and measurement noise, rounded to the resolution a real
// part of that kind reports.
import { HealthCounter, type Sensor, type SensorRecord } from './sensor.ts';
import { SeededRandom, seedFromText } from './random.ts';

export const SIMULATED_QUANTITIES = ['temperature', 'humidity', 'pressure', 'pulse'] as const;
export type SimulatedQuantity = (typeof SIMULATED_QUANTITIES)[number];

export interface SimulatedSensorOptions {
  name: string;
  quantity: SimulatedQuantity;
  seed?: number;
  /** Fraction of reads that fail, to exercise error handling. */
  failureRate?: number;
}

const DAY_S = 86_400;

/** Drift that wanders but returns to zero, time-step aware so irregular reads stay realistic. */
class Drift {
  value = 0;
  private lastS: number | undefined;
  private readonly sigma: number;
  private readonly tauS: number;
  private readonly random: SeededRandom;

  constructor(sigma: number, tauS: number, random: SeededRandom) {
    this.sigma = sigma;
    this.tauS = tauS;
    this.random = random;
  }

  step(nowS: number): number {
    const dt = this.lastS === undefined ? 0 : Math.max(0, nowS - this.lastS);
    this.lastS = nowS;
    if (dt > 0) {
      const decay = Math.exp(-dt / this.tauS);
      this.value = this.value * decay + this.sigma * Math.sqrt(1 - decay * decay) * this.random.gaussian();
    }
    return this.value;
  }
}

/** Rounds to `decimals` places, as a part with that resolution reports. */
function round(value: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}

function diurnal(nowS: number, peakHour: number): number {
  return Math.cos((2 * Math.PI * (nowS % DAY_S - peakHour * 3600)) / DAY_S);
}

export function createSimulatedSensor(options: SimulatedSensorOptions): Sensor {
  const random = new SeededRandom(options.seed ?? seedFromText(options.name));
  const health = new HealthCounter();
  const drift = new Drift(options.quantity === 'pressure' ? 800 : options.quantity === 'humidity' ? 6 : 1.5, 6 * 3600, random);
  let pulses = 0;
  let lastPulseS: number | undefined;

  const readQuantity = (nowS: number): SensorRecord[] => {
    switch (options.quantity) {
      case 'temperature': {
        const value = 16 + 5 * diurnal(nowS, 15) + drift.step(nowS) + 0.05 * random.gaussian();
        return [{ n: '', u: 'Cel', v: round(value, 2) }];
      }
      case 'humidity': {
        // Relative humidity falls as the day warms up.
        const value = 65 - 15 * diurnal(nowS, 15) + drift.step(nowS) + 0.3 * random.gaussian();
        return [{ n: '', u: '%RH', v: round(Math.min(100, Math.max(0, value)), 1) }];
      }
      case 'pressure': {
        const value = 101_325 + drift.step(nowS) + 3 * random.gaussian();
        return [{ n: '', u: 'Pa', v: Math.round(value) }];
      }
      case 'pulse': {
        // A meter giving about one pulse every two seconds, arriving as a Poisson process.
        const dt = lastPulseS === undefined ? 0 : Math.max(0, nowS - lastPulseS);
        lastPulseS = nowS;
        const arrivals = poisson(0.5 * dt, random);
        pulses += arrivals;
        return [
          { n: 'total', u: 'count', v: pulses },
          { n: 'rate', u: '/s', v: dt > 0 ? round(arrivals / dt, 3) : 0 },
        ];
      }
    }
  };

  return {
    name: options.name,
    kind: `simulated/${options.quantity}`,
    async start() {},
    async stop() {},
    async read(nowMs) {
      if (options.failureRate && random.next() < options.failureRate) {
        const error = new Error(`${options.name}: simulated read failure`);
        health.failure(error);
        throw error;
      }
      const records = readQuantity(nowMs / 1000);
      health.success(nowMs);
      return records;
    },
    health: () => health.snapshot(),
  };
}

function poisson(mean: number, random: SeededRandom): number {
  if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * random.gaussian()));
  const limit = Math.exp(-mean);
  let k = 0;
  let p = random.next();
  while (p > limit) {
    k++;
    p *= random.next();
  }
  return k;
}
