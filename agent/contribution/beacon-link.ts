// A radio link shared by the mesh and the beacons (docs/rewards.md, section 2): beacon
// frames (first byte 0xB1) go to the beaconer, every other frame to the mesh node as
// before; sends go through unchanged. What the box sends for contribution is counted
// here, so its share of the airtime budget can be told.
import type { Link, LinkStats, ReceivedFrame } from '../../drivers/link.ts';
import { beaconInFrame } from './messages.ts';

export interface HeardBeacon {
  beacon: Uint8Array;
  rssi: number | undefined;
  snr: number | undefined;
}

export class BeaconLink implements Link {
  readonly inner: Link;
  private meshHandler: ((frame: ReceivedFrame) => void) | undefined;
  private beaconHandler: ((heard: HeardBeacon) => void) | undefined;
  /** airtime of the beacons this box sent, ms */
  beaconAirtimeMs = 0;
  /** airtime of other frames a classifier said were contribution traffic (witnesses through the mesh), ms */
  reportAirtimeMs = 0;
  private readonly isReport: ((frame: Uint8Array) => boolean) | undefined;

  constructor(inner: Link, options: { isReport?: (frame: Uint8Array) => boolean } = {}) {
    this.inner = inner;
    this.isReport = options.isReport;
    inner.onReceive((frame) => {
      const beacon = beaconInFrame(frame.data);
      if (beacon) this.beaconHandler?.({ beacon, rssi: frame.rssi, snr: frame.snr });
      else this.meshHandler?.(frame);
    });
  }

  get name(): string { return this.inner.name; }
  get mtu(): number { return this.inner.mtu; }
  get address(): string { return this.inner.address; }
  get overhears(): boolean { return this.inner.overhears; }
  get stats(): LinkStats { return this.inner.stats; }
  airtimeMs(bytes: number): number { return this.inner.airtimeMs(bytes); }
  budgetMs(): number { return this.inner.budgetMs(); }
  close(): void { this.inner.close(); }
  report(): Record<string, unknown> {
    return { ...(this.inner.report?.() ?? {}), beaconAirtimeMs: Math.round(this.beaconAirtimeMs) };
  }

  send(data: Uint8Array, to?: string): void {
    if (this.isReport?.(data)) this.reportAirtimeMs += this.inner.airtimeMs(data.length);
    this.inner.send(data, to);
  }

  onReceive(handler: (frame: ReceivedFrame) => void): void {
    this.meshHandler = handler;
  }

  onBeacon(handler: (heard: HeardBeacon) => void): void {
    this.beaconHandler = handler;
  }

  /** Puts a beacon frame on the air if the budget leaves room for it and `reserve` more like it; false when it does not. */
  sendBeacon(frame: Uint8Array, reserve = 10): boolean {
    const airtime = this.inner.airtimeMs(frame.length);
    if (this.inner.budgetMs() < airtime * (1 + reserve)) return false;
    this.beaconAirtimeMs += airtime;
    this.inner.send(frame);
    return true;
  }
}
