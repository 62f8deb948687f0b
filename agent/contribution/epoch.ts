// One epoch put together: each device's evidence (readings, uptime, presence, relaying,
// jobs) scored, owners' rewards, cumulative amounts and their Merkle root, as the JSON
// table the gateway publishes on iop/v1/rewards/<epoch> (docs/rewards.md, section 8).
import type { JobCredit } from './jobs.ts';
import type { PresenceOutcome } from './presence.ts';
import type { RelayCredit } from './relay.ts';
import { claimTree, cumulate, ownerRewards } from './rewards.ts';
import { emptyEvidence, score, type Evidence, type Part, type ScoreRules } from './score.ts';

export interface DeviceRecord {
  device: string;
  owner: string | undefined;
  readingsExpected: number;
  readingsDelivered: number;
  uptimeS: number;
  /** takes part in beacons (has a radio) */
  beacons: boolean;
}

export interface ScoredDevice {
  device: string;
  owner: string | null;
  performance: number;
  parts: Partial<Record<Part, number>>;
  outlierFactor: number;
  evidence: Evidence;
}

export function scoreDevices(input: {
  rules: ScoreRules;
  devices: readonly DeviceRecord[];
  presence?: PresenceOutcome | undefined;
  relays?: ReadonlyMap<string, RelayCredit> | undefined;
  jobs?: readonly ReadonlyMap<string, JobCredit>[] | undefined;
}): ScoredDevice[] {
  return input.devices.map((d) => {
    const e = emptyEvidence();
    e.readingsExpected = d.readingsExpected;
    e.readingsDelivered = d.readingsDelivered;
    e.uptimeS = d.uptimeS;
    e.beacons = d.beacons;
    const p = input.presence?.byDevice.get(d.device);
    if (p) {
      e.witnessesGiven = p.given;
      e.witnessesReceived = p.received;
    }
    const r = input.relays?.get(d.device);
    if (r) {
      e.relayClaimed = r.claimed;
      e.relayCredited = r.credited;
    }
    for (const job of input.jobs ?? []) {
      const c = job.get(d.device);
      if (!c) continue;
      e.jobSlotsAllocated += c.slotsAllocated;
      e.jobSlotsServed += c.slotsServed;
      e.jobReadingsJudged += c.judged;
      e.outliers += c.outliers;
    }
    const s = score(e, input.rules);
    return { device: d.device, owner: d.owner ?? null, performance: s.performance, parts: s.parts, outlierFactor: s.outlierFactor, evidence: e };
  });
}

export interface EpochTable {
  epoch: number;
  rule: 'stake×performance' | 'stake-only';
  pool: string;
  devices: ScoredDevice[];
  owners: { owner: string; stake: string; devices: number; performance: number; reward: string; cumulative: string; proof: string[] }[];
  /** root of the OpenZeppelin standard tree of [owner, cumulative] (null: nothing to claim yet) */
  root: string | null;
  counts?: Record<string, unknown>;
}

export function epochTable(input: {
  epoch: number;
  pool: bigint;
  byStakeOnly?: boolean;
  stakes: ReadonlyMap<string, bigint>;
  devices: ScoredDevice[];
  /** cumulative amounts after the previous epoch */
  previous?: ReadonlyMap<string, bigint>;
  counts?: Record<string, unknown>;
}): EpochTable {
  const rows = ownerRewards(input.pool, input.stakes, input.devices.map((d) => ({ device: d.device, owner: d.owner ?? undefined, performance: d.performance })), input.byStakeOnly);
  const cumulative = cumulate(input.previous ?? new Map(), rows);
  const tree = claimTree(cumulative);
  return {
    epoch: input.epoch,
    rule: input.byStakeOnly ? 'stake-only' : 'stake×performance',
    pool: input.pool.toString(),
    devices: input.devices,
    owners: rows.map((r) => ({
      owner: r.owner, stake: r.stake.toString(), devices: r.devices, performance: r.performancePpm / 1e6, reward: r.reward.toString(),
      cumulative: (cumulative.get(r.owner) ?? 0n).toString(), proof: tree?.proofs.get(r.owner) ?? [],
    })),
    root: tree?.root ?? null,
    ...(input.counts ? { counts: input.counts } : {}),
  };
}

/** The cumulative amounts a published table holds, for the next epoch. */
export function cumulativeOf(table: EpochTable): Map<string, bigint> {
  return new Map(table.owners.map((o) => [o.owner, BigInt(o.cumulative)]));
}
