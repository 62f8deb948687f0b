// The gateway's checks on beacons and witness reports for one epoch (docs/rewards.md,
// section 3). Messages are added as they come, in any order; settle() judges the
// witnesses against the beacons once the epoch is over and says what each device earned.
// Every refusal is counted by reason, so replays and forgeries show in the epoch table.
import { bytesEqual, toHex } from '../codec/hex.ts';
import { identityFromId } from '../codec/identity.ts';
import { distanceM, maxRssiDbm, type Location } from './geo.ts';
import { beaconerOf, beaconId, openContribution, type Beacon, type Witness } from './messages.ts';

export const REFUSALS = [
  'malformed', 'bad-signature', 'old-epoch', 'future', 'other-region', 'duplicate', 'too-frequent',
  'unknown-beacon', 'beaconer-mismatch', 'self', 'outside-window', 'frequency', 'too-strong', 'too-far', 'not-a-presence-message',
] as const;
export type Refusal = typeof REFUSALS[number];

export interface PresenceRules {
  epoch: number;
  epochS: number;
  beaconPeriodS: number;
  /** regions this gateway serves */
  regions: readonly string[];
  /** how long after a beacon's time a witness may say it heard it, s */
  windowS: number;
  /** clocks may differ this much, s */
  clockSkewS: number;
  maxFrequencyDiffHz: number;
  /** dB a witness may exceed the free-space bound by (antenna gain, measurement error) */
  rssiMarginDb: number;
  maxDistanceM: number;
  /** witnesses credited per beacon, first come */
  maxWitnessesPerBeacon: number;
  ownerOf(device: string): string | undefined;
  locationOf(device: string): Location | undefined;
}

export const DEFAULT_PRESENCE_RULES = {
  epochS: 86_400, beaconPeriodS: 21_600, regions: ['EU868'], windowS: 120, clockSkewS: 30, maxFrequencyDiffHz: 100_000,
  rssiMarginDb: 10, maxDistanceM: 100_000, maxWitnessesPerBeacon: 14,
} as const;

export interface PresenceCredit {
  beacons: number;
  /** credited witnesses this device gave */
  given: number;
  /** credited witnesses of this device's beacons */
  received: number;
}

export interface PresenceOutcome {
  byDevice: Map<string, PresenceCredit>;
  beacons: number;
  witnessesValid: number;
  /** valid, but earning nothing: between boxes of one owner, or past the per-beacon cap */
  witnessesUncredited: { sameOwner: number; overCap: number };
  refused: Record<Refusal, number>;
}

interface HeardBeacon { device: string; body: Beacon; arrival: number; beaconer: Uint8Array }
interface PendingWitness { device: string; body: Witness }

export type Added = { ok: true; kind: 'beacon' | 'witness'; device: string } | { ok: false; reason: Refusal; detail: string };

export class PresenceLedger {
  readonly rules: PresenceRules;
  private readonly beacons = new Map<string, HeardBeacon>();
  /** device -> beacon periods it beaconed in */
  private readonly periods = new Map<string, Set<number>>();
  private readonly witnesses: PendingWitness[] = [];
  private readonly witnessKeys = new Set<string>();
  private readonly refusedCounts = Object.fromEntries(REFUSALS.map((r) => [r, 0])) as Record<Refusal, number>;
  private arrivals = 0;

  constructor(rules: PresenceRules) {
    this.rules = rules;
  }

  get startS(): number {
    return this.rules.epoch * this.rules.epochS;
  }

  get endS(): number {
    return this.startS + this.rules.epochS;
  }

  /** A beacon or witness report as it came (over MQTT, or relayed by an uplink box). */
  add(bytes: Uint8Array): Added {
    let opened;
    try {
      opened = openContribution(bytes);
    } catch (err) {
      return this.refuse('malformed', (err as Error).message);
    }
    if (!opened.valid) return this.refuse('bad-signature', `signature of ${opened.signer.id} does not verify`);
    const device = opened.signer.id;
    const { message } = opened;
    if (message.kind === 'beacon') return this.addBeacon(device, message.body, toHex(beaconId(bytes)));
    if (message.kind === 'witness') return this.addWitness(device, message.body);
    return this.refuse('not-a-presence-message', 'relay attestations go to the relay ledger');
  }

  /** A beacon whose signature by `device` was checked; `id` its beacon id in hex. */
  addBeacon(device: string, body: Beacon, id: string): Added {
    if (this.beacons.has(id)) return this.refuse('duplicate', `beacon ${id} again`);
    const timing = this.inEpoch(body.time, 0);
    if (timing) return timing;
    if (!this.rules.regions.includes(body.region)) return this.refuse('other-region', `beacon region ${body.region} is not served here (${this.rules.regions.join(', ')})`);
    const period = Math.floor((body.time - this.startS) / this.rules.beaconPeriodS);
    let periods = this.periods.get(device);
    if (!periods) this.periods.set(device, periods = new Set());
    if (periods.has(period)) return this.refuse('too-frequent', `${device} beaconed twice in beacon period ${period}`);
    periods.add(period);
    this.beacons.set(id, { device, body, arrival: this.arrivals++, beaconer: beaconerOf(identityFromId(device).kid) });
    return { ok: true, kind: 'beacon', device };
  }

  /** A witness report whose signature by `device` was checked. */
  addWitness(device: string, body: Witness): Added {
    const key = `${device}/${toHex(body.beaconId)}`;
    if (this.witnessKeys.has(key)) return this.refuse('duplicate', `witness by ${device} of beacon ${toHex(body.beaconId)} again`);
    const timing = this.inEpoch(body.receivedAt, this.rules.windowS);
    if (timing) return timing;
    if (!this.rules.regions.includes(body.region)) return this.refuse('other-region', `witness region ${body.region} is not served here`);
    this.witnessKeys.add(key);
    this.witnesses.push({ device, body });
    return { ok: true, kind: 'witness', device };
  }

  /** A time inside the epoch (a witness may come `lateS` after its end); otherwise the refusal. */
  private inEpoch(time: number, lateS: number): Added | undefined {
    if (time < this.startS - this.rules.clockSkewS) return this.refuse('old-epoch', `time ${time} is before epoch ${this.rules.epoch} (from ${this.startS})`);
    if (time >= this.endS + lateS + this.rules.clockSkewS) return this.refuse('future', `time ${time} is after epoch ${this.rules.epoch} (until ${this.endS})`);
    return undefined;
  }

  private refuse(reason: Refusal, detail: string): Added {
    this.refusedCounts[reason]++;
    return { ok: false, reason, detail };
  }

  /** Judges every witness against its beacon; call once the epoch's messages are in. */
  settle(): PresenceOutcome {
    const byDevice = new Map<string, PresenceCredit>();
    const credit = (device: string) => {
      let c = byDevice.get(device);
      if (!c) byDevice.set(device, c = { beacons: 0, given: 0, received: 0 });
      return c;
    };
    for (const b of this.beacons.values()) credit(b.device).beacons++;
    const perBeacon = new Map<string, number>();
    const uncredited = { sameOwner: 0, overCap: 0 };
    let valid = 0;
    for (const w of this.witnesses) {
      const verdict = this.judge(w);
      if (verdict) {
        this.refusedCounts[verdict]++;
        continue;
      }
      valid++;
      const beacon = this.beacons.get(toHex(w.body.beaconId))!;
      const owner = this.rules.ownerOf(w.device);
      if (owner !== undefined && owner === this.rules.ownerOf(beacon.device)) {
        uncredited.sameOwner++;
        continue;
      }
      const id = toHex(w.body.beaconId);
      const n = perBeacon.get(id) ?? 0;
      if (n >= this.rules.maxWitnessesPerBeacon) {
        uncredited.overCap++;
        continue;
      }
      perBeacon.set(id, n + 1);
      credit(w.device).given++;
      credit(beacon.device).received++;
    }
    return { byDevice, beacons: this.beacons.size, witnessesValid: valid, witnessesUncredited: uncredited, refused: { ...this.refusedCounts } };
  }

  private judge(w: PendingWitness): Refusal | undefined {
    const beacon = this.beacons.get(toHex(w.body.beaconId));
    if (!beacon) return 'unknown-beacon';
    if (!bytesEqual(w.body.beaconer, beacon.beaconer)) return 'beaconer-mismatch';
    if (w.device === beacon.device) return 'self';
    const r = this.rules;
    if (w.body.receivedAt < beacon.body.time - r.clockSkewS || w.body.receivedAt > beacon.body.time + r.windowS + r.clockSkewS) return 'outside-window';
    if (w.body.region !== beacon.body.region) return 'other-region';
    if (Math.abs(w.body.frequencyHz - beacon.body.frequencyHz) > r.maxFrequencyDiffHz) return 'frequency';
    const from = r.locationOf(beacon.device);
    const to = r.locationOf(w.device);
    if (from && to) {
      const d = distanceM(from, to);
      if (d > r.maxDistanceM) return 'too-far';
      if (w.body.rssi > maxRssiDbm(beacon.body.eirpDbm, d, beacon.body.frequencyHz) + r.rssiMarginDb) return 'too-strong';
    }
    return undefined;
  }
}
