// Readings that disagree with their neighbours' (docs/rewards.md, section 5): each value
// is compared with the median of the values around it for the same quantity in the same
// slot (its own included), scaled by their median absolute deviation: robust, a few liars
// move neither. Neighbourhoods are squares of `radiusM` (a value's own and the eight
// around it), so one slot of n values costs about n·log n, not n².
import type { Location } from './geo.ts';

export interface SlotValue {
  device: string;
  value: number;
  location?: Location | undefined;
}

export interface OutlierRules {
  /** a value this many robust standard deviations from its neighbourhood's median is an outlier */
  threshold: number;
  /** the smallest deviation scale, in the quantity's unit (neighbours that agree exactly still allow this much) */
  minScale: number;
  /** side of a neighbourhood square, metres; undefined: every value of the slot is one neighbourhood */
  radiusM?: number | undefined;
  /** values a neighbourhood needs besides the one judged; fewer: not judged */
  minNeighbours: number;
}

export const DEFAULT_OUTLIER_RULES: OutlierRules = { threshold: 3.5, minScale: 0.5, radiusM: 5000, minNeighbours: 2 };

/** 1.4826 · MAD estimates the standard deviation of normally distributed values. */
const MAD_TO_SD = 1.4826;
const METRES_PER_DEGREE = 111_320;

export function median(sorted: readonly number[]): number {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

/** Median and scaled MAD of some values, or undefined when too few to judge by. */
function robustCentre(values: number[], rules: OutlierRules): { centre: number; scale: number } | undefined {
  if (values.length < rules.minNeighbours + 1) return undefined;
  values.sort((a, b) => a - b);
  const centre = median(values);
  const deviations = values.map((x) => Math.abs(x - centre)).sort((a, b) => a - b);
  return { centre, scale: Math.max(MAD_TO_SD * median(deviations), rules.minScale) };
}

/** In one slot: the devices whose value could be judged (enough neighbours), and those that are outliers. */
export function judgeSlot(values: readonly SlotValue[], rules: OutlierRules = DEFAULT_OUTLIER_RULES): { judged: Set<string>; flagged: Set<string> } {
  const flagged = new Set<string>();
  const judged = new Set<string>();
  const judge = (v: SlotValue, c: { centre: number; scale: number } | undefined) => {
    if (!c) return;
    judged.add(v.device);
    if (Math.abs(v.value - c.centre) > rules.threshold * c.scale) flagged.add(v.device);
  };
  const located = rules.radiusM !== undefined && values.every((v) => v.location);
  if (!located) {
    const c = robustCentre(values.map((v) => v.value), rules);
    for (const v of values) judge(v, c);
    return { judged, flagged };
  }
  // Squares of radiusM on a plane through the first value (fine at a city's or a region's scale).
  const origin = values[0]!.location!;
  const cos = Math.cos((origin.lat * Math.PI) / 180);
  const cells = new Map<string, SlotValue[]>();
  const cellOf = (l: Location) => [Math.floor(((l.lon - origin.lon) * METRES_PER_DEGREE * cos) / rules.radiusM!), Math.floor(((l.lat - origin.lat) * METRES_PER_DEGREE) / rules.radiusM!)] as const;
  for (const v of values) {
    const [x, y] = cellOf(v.location!);
    const key = `${x},${y}`;
    let list = cells.get(key);
    if (!list) cells.set(key, list = []);
    list.push(v);
  }
  for (const [key, members] of cells) {
    const [x, y] = key.split(',').map(Number) as [number, number];
    const around: number[] = [];
    for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) for (const v of cells.get(`${x + dx},${y + dy}`) ?? []) around.push(v.value);
    const c = robustCentre(around, rules);
    for (const v of members) judge(v, c);
  }
  return { judged, flagged };
}

/** The devices whose value is an outlier against their neighbourhood's in one slot. */
export function flagOutliers(values: readonly SlotValue[], rules: OutlierRules = DEFAULT_OUTLIER_RULES): Set<string> {
  return judgeSlot(values, rules).flagged;
}
