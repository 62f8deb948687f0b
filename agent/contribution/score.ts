// A device's performance for one epoch, in [0, 1], from weighted parts (docs/rewards.md,
// section 6). A part that does not apply to a device (no job allocated, nothing relayed,
// no readings expected) drops out and the other weights scale up; flagged outliers then
// reduce the whole.

export interface Evidence {
  /** readings the device should have delivered this epoch (its sampling interval), and those the gateway verified */
  readingsExpected: number;
  readingsDelivered: number;
  /** seconds the device was online by its status messages (birth, heartbeats, last will) */
  uptimeS: number;
  /** credited witnesses given and received (presence.ts) */
  witnessesGiven: number;
  witnessesReceived: number;
  /** whether the device has a radio and so takes part in beacons (false: the part drops out) */
  beacons: boolean;
  jobSlotsAllocated: number;
  jobSlotsServed: number;
  /** job readings judged against neighbours, and those flagged as outliers */
  jobReadingsJudged: number;
  outliers: number;
  relayClaimed: number;
  relayCredited: number;
}

export interface ScoreRules {
  epochS: number;
  /** beacons each box sends per epoch: a box giving and receiving this many witnesses earns the whole witness part */
  witnessTarget: number;
  weights: { delivery: number; uptime: number; witnesses: number; jobs: number; relay: number };
  /** each 1 % of judged job readings flagged takes this many % off the performance */
  outlierPenalty: number;
}

export const DEFAULT_WEIGHTS: ScoreRules['weights'] = { delivery: 0.35, uptime: 0.15, witnesses: 0.2, jobs: 0.2, relay: 0.1 };

export function defaultScoreRules(epochS = 86_400, beaconPeriodS = 21_600): ScoreRules {
  return { epochS, witnessTarget: Math.max(1, Math.round(epochS / beaconPeriodS)), weights: DEFAULT_WEIGHTS, outlierPenalty: 2 };
}

export type Part = keyof ScoreRules['weights'];
export const PARTS: readonly Part[] = ['delivery', 'uptime', 'witnesses', 'jobs', 'relay'];

export interface Score {
  performance: number;
  /** each applicable part's value in [0, 1]; absent parts did not apply */
  parts: Partial<Record<Part, number>>;
  /** the factor outliers left (1: none flagged) */
  outlierFactor: number;
}

const clamp = (x: number) => (x <= 0 || !Number.isFinite(x) ? 0 : x >= 1 ? 1 : x);
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

export function score(e: Evidence, rules: ScoreRules): Score {
  const parts: Partial<Record<Part, number>> = {};
  if (e.readingsExpected > 0) parts.delivery = clamp(e.readingsDelivered / e.readingsExpected);
  parts.uptime = clamp(e.uptimeS / rules.epochS);
  if (e.beacons) parts.witnesses = 0.5 * clamp(e.witnessesGiven / rules.witnessTarget) + 0.5 * clamp(e.witnessesReceived / rules.witnessTarget);
  if (e.jobSlotsAllocated > 0) parts.jobs = clamp(e.jobSlotsServed / e.jobSlotsAllocated);
  if (e.relayClaimed > 0) parts.relay = clamp(e.relayCredited / e.relayClaimed);
  let sum = 0;
  let weights = 0;
  for (const part of PARTS) {
    const value = parts[part];
    if (value === undefined) continue;
    sum += rules.weights[part] * value;
    weights += rules.weights[part];
  }
  const outlierFactor = e.jobReadingsJudged > 0 ? clamp(1 - rules.outlierPenalty * (e.outliers / e.jobReadingsJudged)) : 1;
  for (const part of PARTS) if (parts[part] !== undefined) parts[part] = round6(parts[part]!);
  return { performance: round6(weights > 0 ? (sum / weights) * outlierFactor : 0), parts, outlierFactor: round6(outlierFactor) };
}

export function emptyEvidence(): Evidence {
  return {
    readingsExpected: 0, readingsDelivered: 0, uptimeS: 0, witnessesGiven: 0, witnessesReceived: 0, beacons: true,
    jobSlotsAllocated: 0, jobSlotsServed: 0, jobReadingsJudged: 0, outliers: 0, relayClaimed: 0, relayCredited: 0,
  };
}
