// The last hour of each numeric quantity, for the page's charts: one point per bucket
// (the latest value in it), so a box sampling ten times a second keeps 360 points a
// quantity, not 36,000. The page keeps its copy the same way from the points it is sent.
import type { SenmlPack } from '../codec/senml.ts';

export const HISTORY_MS = 3_600_000;
export const BUCKET_MS = 10_000;
/** An hour's buckets, and the partly covered ones at either end. */
const MAX_POINTS = HISTORY_MS / BUCKET_MS + 2;
const FIRST_CAPACITY = 16;

/** One new value: [quantity, unit, Unix ms, value]. */
export type Point = [name: string, unit: string, atMs: number, value: number];

export interface PackedSeries { unit: string; t0: number; dt: number[]; v: number[] }

const bucketOf = (atMs: number) => Math.floor(atMs / BUCKET_MS);

/**
 * One quantity's points, oldest first, in a ring of two typed arrays that grows to an
 * hour's worth: 16 bytes a point, where a small array per point took about 70 (measured:
 * an hour of 20 quantities in about 140 KB instead of about 550).
 */
export class Series {
  readonly unit: string;
  private times = new Float64Array(FIRST_CAPACITY);
  private values = new Float64Array(FIRST_CAPACITY);
  private start = 0;
  length = 0;

  constructor(unit: string) {
    this.unit = unit;
  }

  /** [Unix ms, value], oldest first. */
  get points(): [atMs: number, value: number][] {
    return Array.from({ length: this.length }, (_, i) => [this.times[this.slot(i)]!, this.values[this.slot(i)]!]);
  }

  /** The value at `atMs`: it replaces the last point when in the same bucket. */
  add(atMs: number, value: number): void {
    if (this.length > 0) {
      const last = this.slot(this.length - 1);
      if (bucketOf(this.times[last]!) === bucketOf(atMs)) {
        this.times[last] = atMs;
        this.values[last] = value;
        return;
      }
    }
    if (this.length === this.times.length) {
      if (this.length < MAX_POINTS) this.grow();
      else this.dropOldest(1);
    }
    const slot = this.slot(this.length++);
    this.times[slot] = atMs;
    this.values[slot] = value;
  }

  /** Drops the points from the oldest on while they are before `oldestMs`. */
  dropBefore(oldestMs: number): void {
    let old = 0;
    while (old < this.length && this.times[this.slot(old)]! < oldestMs) old++;
    this.dropOldest(old);
  }

  private dropOldest(count: number): void {
    this.start = (this.start + count) % this.times.length;
    this.length -= count;
  }

  private slot(i: number): number {
    return (this.start + i) % this.times.length;
  }

  private grow(): void {
    const capacity = Math.min(this.times.length * 2, MAX_POINTS);
    const times = new Float64Array(capacity);
    const values = new Float64Array(capacity);
    for (let i = 0; i < this.length; i++) {
      times[i] = this.times[this.slot(i)]!;
      values[i] = this.values[this.slot(i)]!;
    }
    [this.times, this.values, this.start] = [times, values, 0];
  }
}

export class History {
  readonly series = new Map<string, Series>();

  /** The pack's numeric records, added; returns them as points for the clients. */
  onPack(pack: SenmlPack, nowMs = Date.now()): Point[] {
    const points: Point[] = [];
    for (const r of pack.records) {
      if (typeof r.v !== 'number' || !Number.isFinite(r.v)) continue;
      // A pack without trusted time is charted by its arrival on this box's clock.
      const atMs = Math.round(((pack.time ?? nowMs / 1000) + (r.t ?? 0)) * 1000);
      const point: Point = [r.n, r.u ?? '', atMs, r.v];
      this.add(point, nowMs);
      points.push(point);
    }
    return points;
  }

  add([name, unit, atMs, value]: Point, nowMs: number): void {
    let series = this.series.get(name);
    if (!series) this.series.set(name, series = new Series(unit));
    series.add(atMs, value);
    series.dropBefore(nowMs - HISTORY_MS);
  }

  /**
   * Compact for the page's first state: times as steps of 100 ms from the previous point
   * (t0 is the first, in 100 ms units), values to 6 significant digits (a chart's need).
   * Four quantities over an hour fit in about 16 KB instead of 50.
   */
  toJSON(): Record<string, PackedSeries> {
    return Object.fromEntries([...this.series].map(([name, series]) => {
      const points = series.points;
      const ticks = points.map(([atMs]) => Math.round(atMs / 100));
      return [name, { unit: series.unit, t0: ticks[0] ?? 0, dt: ticks.map((t, i) => (i ? t - ticks[i - 1]! : 0)), v: points.map(([, v]) => Number(v.toPrecision(6))) }];
    }));
  }
}
