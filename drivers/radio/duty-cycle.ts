// Regional airtime rules for LoRa radios, and a rolling-hour ledger that keeps a radio
// within them. Every radio link (serial modems and the simulated medium) owns one, and
// its `budgetMs()` is what the mesh schedules against.
import type { Clock } from '../clock.ts';

export type Region = 'EU868' | 'EU433' | 'US915';
export const REGIONS: readonly Region[] = ['EU868', 'EU433', 'US915'];

export interface SubBand {
  region: Region;
  /** e.g. "868.0-868.6 MHz" */
  name: string;
  fromHz: number;
  toHz: number;
  /** share of each rolling hour a transmitter may be on air; null: no duty-cycle limit */
  dutyCycle: number | null;
  /** longest single frame on air, in ms; null: no dwell limit */
  maxDwellMs: number | null;
}

const HOUR_MS = 3_600_000;

function band(region: Region, fromMHz: number, toMHz: number, dutyCycle: number | null, maxDwellMs: number | null = null): SubBand {
  return { region, name: `${fromMHz.toFixed(1)}-${toMHz.toFixed(2).replace(/0$/, '')} MHz`, fromHz: Math.round(fromMHz * 1e6), toHz: Math.round(toMHz * 1e6), dutyCycle, maxDwellMs };
}

// ETSI EN 300 220 sub-bands as CEPT ERC/REC 70-03 annex 1 sets them for non-specific
// short-range devices (no listen-before-talk with adaptive frequency agility assumed).
// FCC part 15.247 for US915: no duty cycle, 400 ms dwell time per channel.
const SUB_BANDS: readonly SubBand[] = [
  band('EU868', 863.0, 865.0, 0.001),
  band('EU868', 865.0, 868.0, 0.01),
  band('EU868', 868.0, 868.6, 0.01),
  band('EU868', 868.7, 869.2, 0.001),
  band('EU868', 869.4, 869.65, 0.1),
  band('EU868', 869.7, 870.0, 0.01),
  band('EU433', 433.05, 434.79, 0.1),
  band('US915', 902.0, 928.0, null, 400),
];

/**
 * The sub-band a channel lies in (centre frequency ± half the bandwidth), or an Error
 * naming the region and the frequency when the channel is not inside one sub-band.
 */
export function subBandOf(region: Region, frequencyHz: number, bandwidthHz = 0): SubBand | Error {
  const low = frequencyHz - bandwidthHz / 2;
  const high = frequencyHz + bandwidthHz / 2;
  const found = SUB_BANDS.find((b) => b.region === region && low >= b.fromHz && high <= b.toHz);
  if (found) return found;
  const bands = SUB_BANDS.filter((b) => b.region === region).map((b) => b.name).join(', ');
  const where = bandwidthHz ? `${(low / 1e6).toFixed(4)}-${(high / 1e6).toFixed(4)} MHz (${frequencyHz} Hz ± ${bandwidthHz / 2} Hz)` : `${frequencyHz} Hz`;
  return new Error(`channel ${where} is not inside one ${region} sub-band (${bands})`);
}

interface Transmission {
  at: number;
  ms: number;
}

/** A radio's airtime over the last hour, against its sub-band's rule. */
export class DutyCycle {
  readonly band: SubBand;
  private readonly clock: Clock;
  private readonly windowMs: number;
  private readonly sent: Transmission[] = [];
  private head = 0;
  private windowTotal = 0;

  constructor(band: SubBand, clock: Clock, windowMs = HOUR_MS) {
    this.band = band;
    this.clock = clock;
    this.windowMs = windowMs;
  }

  /** Airtime allowed per rolling window, in ms (Infinity without a duty-cycle limit). */
  get allowanceMs(): number {
    return this.band.dutyCycle === null ? Infinity : this.band.dutyCycle * this.windowMs;
  }

  /** Airtime spent in the rolling window that ends now. */
  usedMs(): number {
    this.expire();
    return this.windowTotal;
  }

  /** Airtime the radio may still spend now (Infinity without a duty-cycle limit). */
  budgetMs(): number {
    return Math.max(0, this.allowanceMs - this.usedMs());
  }

  /** Whether a single frame of this airtime is ever allowed (dwell-time rule). */
  fitsDwell(airtimeMs: number): boolean {
    return this.band.maxDwellMs === null || airtimeMs <= this.band.maxDwellMs;
  }

  /** Whether a frame of this airtime may go on air now. */
  allows(airtimeMs: number): boolean {
    return this.fitsDwell(airtimeMs) && airtimeMs <= this.budgetMs();
  }

  /**
   * How long until a frame of this airtime may go on air: 0 now, Infinity if never (over
   * the dwell limit, or longer than the whole allowance).
   */
  waitMs(airtimeMs: number): number {
    if (!this.fitsDwell(airtimeMs) || airtimeMs > this.allowanceMs) return Infinity;
    this.expire();
    let excess = this.windowTotal + airtimeMs - this.allowanceMs;
    if (excess <= 0) return 0;
    const now = this.clock.now();
    for (let i = this.head; i < this.sent.length; i++) {
      const t = this.sent[i]!;
      excess -= t.ms;
      if (excess <= 0) return Math.max(0, t.at + this.windowMs - now);
    }
    return this.windowMs;
  }

  /** A frame of this airtime went on air now. */
  record(airtimeMs: number): void {
    this.sent.push({ at: this.clock.now(), ms: airtimeMs });
    this.windowTotal += airtimeMs;
  }

  private expire(): void {
    const horizon = this.clock.now() - this.windowMs;
    while (this.head < this.sent.length && this.sent[this.head]!.at <= horizon) {
      this.windowTotal -= this.sent[this.head]!.ms;
      this.head++;
    }
    // Compact now and then so a long-running radio's ledger stays the size of one window.
    if (this.head > 1024 && this.head * 2 > this.sent.length) {
      this.sent.splice(0, this.head);
      this.head = 0;
    }
    if (this.head === this.sent.length) this.windowTotal = 0;
  }
}
