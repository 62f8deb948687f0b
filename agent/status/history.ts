// The last hour of each numeric quantity, for the page's charts: one point per bucket
// (the latest value in it), so a box sampling ten times a second keeps 360 points a
// quantity, not 36,000. The page keeps its copy the same way from the points it is sent.
import type { SenmlPack } from '../codec/senml.ts';

export const HISTORY_MS = 3_600_000;
export const BUCKET_MS = 10_000;

/** One new value: [quantity, unit, Unix ms, value]. */
export type Point = [name: string, unit: string, atMs: number, value: number];

export interface Series { unit: string; points: [atMs: number, value: number][] }
export interface PackedSeries { unit: string; t0: number; dt: number[]; v: number[] }

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
    if (!series) this.series.set(name, series = { unit, points: [] });
    const points = series.points;
    const last = points[points.length - 1];
    if (last && Math.floor(last[0] / BUCKET_MS) === Math.floor(atMs / BUCKET_MS)) {
      last[0] = atMs;
      last[1] = value;
    } else {
      points.push([atMs, value]);
    }
    let old = 0;
    while (old < points.length && points[old]![0] < nowMs - HISTORY_MS) old++;
    if (old) points.splice(0, old);
  }

  /**
   * Compact for the page's first state: times as steps of 100 ms from the previous point
   * (t0 is the first, in 100 ms units), values to 6 significant digits (a chart's need).
   * Four quantities over an hour fit in about 16 KB instead of 50.
   */
  toJSON(): Record<string, PackedSeries> {
    return Object.fromEntries([...this.series].map(([name, { unit, points }]) => {
      const ticks = points.map(([atMs]) => Math.round(atMs / 100));
      return [name, { unit, t0: ticks[0] ?? 0, dt: ticks.map((t, i) => (i ? t - ticks[i - 1]! : 0)), v: points.map(([, v]) => Number(v.toPrecision(6))) }];
    }));
  }
}
