// The router's memory of what it asked for and answered lately, so that a dense or
// congested mesh is not flooded with the same question: seqno requests sent (or passed
// on) and whose answer travels on at once, sources asked for while starved, neighbours
// probed, and links on which a route request was answered.
import type { Clock, TimerHandle } from '../drivers/clock.ts';
import { RecentSet } from './fragments.ts';
import type { Neighbour, NeighbourTable } from './neighbours.ts';
import { nodeIdHex, type Tlv } from './packet.ts';
import { seqNewer, type RouteTable } from './routes.ts';
import type { MeshTimers } from './types.ts';

const SEQREQ_HOLD_MS = 1000;

/** What the bookkeeping needs from the router. */
export interface SeqnoRequestsHost {
  clock: Clock;
  timers: MeshTimers;
  routes: RouteTable;
  hopLimit: number;
  random: () => number;
  neighbours: NeighbourTable;
  idHex: string;
  /** sends control TLVs on every link */
  sendAll(tlvs: Tlv[]): void;
  sendTo(neighbour: Neighbour, tlvs: Tlv[]): void;
  /** announce this source's route soon */
  trigger(sourceHex: string): void;
  /** a neighbour asks for our own seqno `seqno` or newer */
  ownRequested(seqno: number): void;
}

export class SeqnoRequests {
  private readonly host: SeqnoRequestsHost;
  private readonly clock: Clock;
  private readonly timers: MeshTimers;
  /** while starved of every uplink: when to ask again (a request or its answer may be lost) */
  private starvedTimer: TimerHandle | undefined;
  /** sources we asked (or passed on a request) for a new seqno, until when */
  private readonly requested = new Map<string, number>();
  private readonly starvedAsked = new Map<string, number>();
  private readonly probed = new Map<string, number>();
  private readonly answeredAt: number[] = [];
  /** a request seen is not passed on again while an answer may still be travelling */
  private readonly seen: RecentSet;

  constructor(host: SeqnoRequestsHost) {
    this.host = host;
    this.clock = host.clock;
    this.timers = host.timers;
    this.seen = new RecentSet(1024, this.holdMs());
  }

  /** A seqno request from a neighbour: answered if we can, else passed on toward the source. */
  receive(neighbour: Neighbour, tlv: Extract<Tlv, { t: 'seqreq' }>): void {
    const sourceHex = nodeIdHex(tlv.source);
    if (this.seen.seenBefore(sourceHex, this.clock.now())) return;
    if (sourceHex === this.host.idHex) return this.host.ownRequested(tlv.seqno);
    const route = this.host.routes.selectedRoute(sourceHex);
    if (route && !seqNewer(tlv.seqno, route.seqno)) return this.host.trigger(sourceHex);
    // Pass the request on toward the source, never back where it came from.
    if (route && tlv.hops > 1 && route.via !== neighbour.key) {
      const via = this.host.neighbours.get(route.via);
      if (via) {
        this.requestedFor(sourceHex);
        this.host.sendTo(via, [{ ...tlv, hops: tlv.hops - 1 }]);
      }
    }
  }

  /**
   * Routes were selected: ask for new seqnos where they are starved or stuck. A box that
   * can reach some uplink needs no other: it asks for an uplink's only when none is
   * reachable, and only for the most promising one. A route in use (ours, or one we pass
   * on) stuck on a link that stopped carrying data, while a better one is unfeasible, asks too.
   */
  afterSelect(starved: string[], stuck: string[], box: { starvedOfUplinks(): boolean; inUse(sourceHex: string): boolean; again(): void }): void {
    const routes = this.host.routes;
    const uplinkStarved = starved.filter((s) => routes.all().some((r) => r.sourceHex === s && r.uplink));
    if (uplinkStarved.length && box.starvedOfUplinks()) {
      this.ask(uplinkStarved[0]!);
      this.starved(box.again);
    }
    for (const sourceHex of starved) if (!uplinkStarved.includes(sourceHex)) this.ask(sourceHex);
    for (const sourceHex of stuck) {
      const via = routes.selectedRoute(sourceHex)?.via;
      const failing = via !== undefined && (this.host.neighbours.get(via)?.dataFailures ?? 0) > 0;
      if (failing && box.inUse(sourceHex)) this.ask(sourceHex);
    }
  }

  stop(): void {
    this.clock.clearTimeout(this.starvedTimer);
    this.starvedTimer = undefined;
  }

  /** Asks every neighbour for a newer seqno of `sourceHex`, unless asked lately. */
  ask(sourceHex: string): void {
    if (!this.mayAsk(sourceHex)) return;
    const fd = this.host.routes.feasibilityOf(sourceHex);
    const source = this.host.routes.all().find((r) => r.sourceHex === sourceHex)?.source;
    if (!fd || !source) return;
    this.requestedFor(sourceHex);
    this.host.sendAll([{ t: 'seqreq', source, seqno: (fd.seqno + 1) & 0xffff, hops: this.host.hopLimit }]);
  }

  /**
   * Starved of every uplink: on a radio a request or its answer is easily lost, and
   * nothing else may happen for minutes (the next periodic update with a new seqno), so
   * `again` runs after a request's hold time, to ask again while still starved.
   */
  private starved(again: () => void): void {
    if (this.starvedTimer) return;
    this.starvedTimer = this.clock.setTimeout(() => {
      this.starvedTimer = undefined;
      again();
    }, this.holdMs() * (1 + this.host.random() * 0.25));
  }

  /** how long a seqno request is left to be answered before it is sent again */
  holdMs(): number {
    return Math.max(SEQREQ_HOLD_MS, 8 * this.timers.helloMinMs);
  }

  /** A request for `sourceHex` went out (ours or passed on): its answer is passed on at once. */
  requestedFor(sourceHex: string): void {
    this.requested.set(sourceHex, this.clock.now() + 8 * this.timers.helloMinMs);
  }

  /** A newer seqno for `sourceHex` came: true (once) if someone asked for it in time. */
  answers(sourceHex: string): boolean {
    if ((this.requested.get(sourceHex) ?? -Infinity) <= this.clock.now()) return false;
    this.requested.delete(sourceHex);
    return true;
  }

  /** May we ask for a new seqno of `sourceHex` now? Records the asking if so. */
  private mayAsk(sourceHex: string): boolean {
    const now = this.clock.now();
    if ((this.starvedAsked.get(sourceHex) ?? -Infinity) > now - this.holdMs()) return false;
    this.starvedAsked.set(sourceHex, now);
    return true;
  }

  /**
   * May we probe neighbour `key` now? Not so often that a congested channel gets more
   * congested, unless `now` (a silent neighbour on a wired or IP link). Records it if so.
   */
  mayProbe(key: string, now: boolean): boolean {
    const at = this.clock.now();
    if (!now && (this.probed.get(key) ?? -Infinity) > at - Math.max(4 * this.timers.helloMinMs, this.timers.helloMaxMs / 4)) return false;
    this.probed.set(key, at);
    return true;
  }

  /** May we answer a route request on link `linkIndex` now (once per shortest hello interval)? */
  mayAnswer(linkIndex: number): boolean {
    const now = this.clock.now();
    if ((this.answeredAt[linkIndex] ?? -Infinity) > now - this.timers.helloMinMs) return false;
    this.answeredAt[linkIndex] = now;
    return true;
  }
}
