// What one box announces to its neighbours: its own entry (when it offers itself or an
// uplink), the routes it passes on (every node source and its nearest few uplinks), and
// the triggered updates that tell a change at once, merged per event. The periodic dump
// and its timer stay with the node (node.ts); this module says what goes in it.
import type { Clock, TimerHandle } from '../drivers/clock.ts';
import { INFINITE_METRIC, nodeIdFromHex, type NodeId, type Tlv } from './packet.ts';
import type { RouteTable } from './routes.ts';

/**
 * Only the nearest few uplinks are passed on (readings need one): control traffic does
 * not grow with the number of uplinks in a big mesh.
 */
const MAX_UPLINKS_PASSED_ON = 5;

export type Offer = 'no' | 'node' | 'uplink';

export interface AnnouncementsOptions {
  id: NodeId;
  idHex: string;
  clock: Clock;
  random: () => number;
  routes: RouteTable;
  /** this box's own entry: its current seqno and what it offers */
  own: () => { seqno: number; offer: Offer };
  /** update TLVs to every link */
  sendAll: (tlvs: Tlv[]) => void;
}

export class Announcements {
  private readonly options: AnnouncementsOptions;
  private passedOn = new Set<string>();
  private readonly triggered = new Set<string>();
  private triggerTimer: TimerHandle | undefined;

  constructor(options: AnnouncementsOptions) {
    this.options = options;
  }

  /** Whether this box passes on its route to a source. */
  passesOn(sourceHex: string): boolean {
    return this.passedOn.has(sourceHex);
  }

  /**
   * After route selection: the sources passed on now, and a triggered update for every
   * change among them, every source newly passed on, and every one no longer passed on
   * (a retraction).
   */
  reconsider(changed: Iterable<string>): void {
    const next = this.announceable();
    for (const sourceHex of changed) if (next.has(sourceHex) || this.passedOn.has(sourceHex)) this.trigger(sourceHex);
    for (const sourceHex of next) if (!this.passedOn.has(sourceHex)) this.trigger(sourceHex);
    for (const sourceHex of this.passedOn) if (!next.has(sourceHex)) this.trigger(sourceHex);
    this.passedOn = next;
  }

  trigger(sourceHex: string): void {
    this.triggered.add(sourceHex);
    if (this.triggerTimer) return;
    // A short jittered delay merges the changes of one event into one packet.
    this.triggerTimer = this.options.clock.setTimeout(() => {
      this.triggerTimer = undefined;
      const tlvs = this.updateTlvs(this.triggered);
      this.triggered.clear();
      if (tlvs.length) this.options.sendAll(tlvs);
    }, 5 + this.options.random() * 30);
  }

  /** Every route this box announces (its own entry first when it offers something): a dump's, or a request's answer. */
  routeTlvs(): Tlv[] {
    return this.updateTlvs(this.options.own().offer !== 'no' ? [this.options.idHex, ...this.passedOn] : this.passedOn);
  }

  stop(): void {
    this.options.clock.clearTimeout(this.triggerTimer);
  }

  /** Sources this box passes on: every node source, and its nearest uplinks (hysteresis keeps the set stable). */
  private announceable(): Set<string> {
    const selected = this.options.routes.allSelected();
    const rank = (r: { sourceHex: string; total: number }) => (this.passedOn.has(r.sourceHex) ? r.total * 0.8 : r.total);
    const uplinks = selected.filter((r) => r.uplink).sort((a, b) => rank(a) - rank(b)).slice(0, MAX_UPLINKS_PASSED_ON);
    return new Set([...uplinks.map((r) => r.sourceHex), ...selected.filter((r) => !r.uplink).map((r) => r.sourceHex)]);
  }

  private updateTlvs(sources: Iterable<string>): Tlv[] {
    return [...sources].map((s) => this.updateTlv(s)).filter((t): t is Tlv => t !== undefined);
  }

  private updateTlv(sourceHex: string): Tlv | undefined {
    const { routes } = this.options;
    if (sourceHex === this.options.idHex) {
      const { seqno, offer } = this.options.own();
      return { t: 'update', source: this.options.id, seqno, metric: offer === 'no' ? INFINITE_METRIC : 0, uplink: offer === 'uplink' };
    }
    const route = routes.selectedRoute(sourceHex);
    if (route && this.passedOn.has(sourceHex)) {
      routes.announced(sourceHex, route.seqno, route.total);
      return { t: 'update', source: route.source, seqno: route.seqno, metric: route.total, uplink: route.uplink };
    }
    const known = routes.all().find((r) => r.sourceHex === sourceHex);
    const fd = routes.feasibilityOf(sourceHex);
    if (!known && !fd) return undefined;
    // A retraction: those routing through us must look elsewhere.
    return { t: 'update', source: known?.source ?? nodeIdFromHex(sourceHex), seqno: fd?.seqno ?? known?.seqno ?? 0, metric: INFINITE_METRIC, uplink: false };
  }
}
