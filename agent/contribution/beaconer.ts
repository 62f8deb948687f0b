// A box's part in proof of presence (docs/rewards.md, section 2): once per beacon period,
// at a random moment, it signs a beacon and puts it on each radio link when the link's
// duty-cycle budget allows (the budget always wins: a period can be skipped); it
// witnesses the beacons it hears. Both go out through `report`: the box's own uplink, or
// the mesh to its uplink box.
import type { Clock, TimerHandle } from '../../drivers/clock.ts';
import { toHex } from '../codec/hex.ts';
import type { DeviceIdentity } from '../codec/identity.ts';
import type { BeaconLink, HeardBeacon } from './beacon-link.ts';
import { beaconerOf, beaconFrame, beaconId, openContribution, type ContributionMessage } from './messages.ts';

export interface BeaconRadio {
  link: BeaconLink;
  region: string;
  frequencyHz: number;
  eirpDbm: number;
}

export interface BeaconerOptions {
  identity: DeviceIdentity;
  /** signs without I/O (the simulator runs in virtual time) */
  sign: (message: ContributionMessage) => Uint8Array;
  radios: readonly BeaconRadio[];
  clock: Clock;
  random: () => number;
  /** Unix seconds now */
  nowS: () => number;
  periodS: number;
  /** a beacon heard more than this far from its own time is not witnessed (a replay on the air) */
  windowS?: number;
  report: (kind: 'beacon' | 'witness', bytes: Uint8Array) => void;
}

export class Beaconer {
  private readonly options: BeaconerOptions;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private readonly seen = new Set<string>();
  readonly counters = { beacons: 0, skipped: 0, heard: 0, witnesses: 0, ignored: 0 };

  constructor(options: BeaconerOptions) {
    this.options = options;
    options.radios.forEach((radio) => radio.link.onBeacon((heard) => this.heard(radio, heard)));
  }

  start(): void {
    this.schedulePeriod();
  }

  stop(): void {
    this.stopped = true;
    this.options.clock.clearTimeout(this.timer);
  }

  /** The next period's beacon at a random moment of it (the first period starts now). */
  private schedulePeriod(): void {
    const periodMs = this.options.periodS * 1000;
    const periodEnd = this.options.clock.now() + periodMs;
    this.timer = this.options.clock.setTimeout(() => this.beacon(periodEnd), this.options.random() * periodMs);
  }

  private beacon(periodEnd: number): void {
    if (this.stopped) return;
    const { clock, random } = this.options;
    const pending = this.options.radios.filter((radio) => !this.sendOn(radio));
    if (pending.length === 0 || clock.now() >= periodEnd - 60_000) {
      this.counters.skipped += pending.length;
      this.timer = clock.setTimeout(() => this.schedulePeriod(), Math.max(0, periodEnd - clock.now()));
      return;
    }
    // No room in the budget now: try again in 1 to 10 minutes, within this period.
    this.timer = clock.setTimeout(() => this.beacon(periodEnd), 60_000 + random() * 540_000);
  }

  private sendOn(radio: BeaconRadio): boolean {
    const bytes = this.options.sign({
      kind: 'beacon',
      body: { time: Math.floor(this.options.nowS()), nonce: nonce(this.options.random), region: radio.region, frequencyHz: radio.frequencyHz, eirpDbm: radio.eirpDbm },
    });
    if (!radio.link.sendBeacon(beaconFrame(bytes))) return false;
    this.counters.beacons++;
    this.options.report('beacon', bytes);
    return true;
  }

  private heard(radio: BeaconRadio, heard: HeardBeacon): void {
    this.counters.heard++;
    let opened;
    try {
      opened = openContribution(heard.beacon);
    } catch {
      this.counters.ignored++;
      return;
    }
    const now = this.options.nowS();
    const { message } = opened;
    const id = beaconId(heard.beacon);
    const key = toHex(id);
    if (!opened.valid || message.kind !== 'beacon' || opened.signer.id === this.options.identity.id || this.seen.has(key)
      || Math.abs(now - message.body.time) > (this.options.windowS ?? 120) || heard.rssi === undefined) {
      this.counters.ignored++;
      return;
    }
    if (this.seen.size > 4096) this.seen.clear();
    this.seen.add(key);
    this.counters.witnesses++;
    this.options.report('witness', this.options.sign({
      kind: 'witness',
      body: {
        beaconId: id, beaconer: beaconerOf(opened.signer.kid), receivedAt: Math.floor(now), rssi: heard.rssi, snr: heard.snr ?? 0,
        frequencyHz: radio.frequencyHz, link: radio.link.name.slice(0, 24), region: radio.region,
      },
    }));
  }
}

function nonce(random: () => number): Uint8Array {
  return Uint8Array.from({ length: 8 }, () => Math.floor(random() * 256));
}
