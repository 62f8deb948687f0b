// Readings that disagree with their neighbours' (docs/rewards.md, section 5): each value
// is compared with the median of the other boxes' values for the same quantity in the
// same slot, scaled by their median absolute deviation (robust: a few liars move neither).
import { distanceM, type Location } from './geo.ts';

export interface SlotValue {
  device: string;
  value: number;
  location?: Location | undefined;
}

export interface OutlierRules {
  /** a value this many robust standard deviations from the neighbours' median is an outlier */
  threshold: number;
  /** the smallest deviation scale, in the quantity's unit (neighbours that agree exactly still allow this much) */
  minScale: number;
  /** neighbours: boxes within this distance (metres); undefined: every box in the group */
  radiusM?: number | undefined;
  /** fewer neighbours than this: the value is not judged */
  minNeighbours: number;
}

export const DEFAULT_OUTLIER_RULES: OutlierRules = { threshold: 3.5, minScale: 0.5, radiusM: 5000, minNeighbours: 2 };

/** 1.4826 · MAD estimates the standard deviation of normally distributed values. */
const MAD_TO_SD = 1.4826;

export function median(sorted: readonly number[]): number {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

/** The devices whose value is an outlier against their neighbours' in one slot. */
export function flagOutliers(values: readonly SlotValue[], rules: OutlierRules = DEFAULT_OUTLIER_RULES): Set<string> {
  const flagged = new Set<string>();
  for (const v of values) {
    const others: number[] = [];
    for (const o of values) {
      if (o === v || o.device === v.device) continue;
      if (rules.radiusM !== undefined && v.location && o.location && distanceM(v.location, o.location) > rules.radiusM) continue;
      others.push(o.value);
    }
    if (others.length < rules.minNeighbours) continue;
    others.sort((a, b) => a - b);
    const centre = median(others);
    const deviations = others.map((x) => Math.abs(x - centre)).sort((a, b) => a - b);
    const scale = Math.max(MAD_TO_SD * median(deviations), rules.minScale);
    if (Math.abs(v.value - centre) > rules.threshold * scale) flagged.add(v.device);
  }
  return flagged;
}
