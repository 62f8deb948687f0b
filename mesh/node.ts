// One box's mesh router: neighbours (from hellos, hellos.ts), Babel-style route
// announcements for the boxes that offer an uplink (or announce themselves), seqno
// requests when starved or stuck; the data plane (data-plane.ts) forwards over the routes
// chosen here, and every packet leaves through the outbox (outbox.ts). Knows links and
// packets, nothing of MQTT.
import type { Clock, TimerHandle } from '../drivers/clock.ts';
import type { Link, ReceivedFrame } from '../drivers/link.ts';
import { RecentSet } from './fragments.ts';
import { NeighbourTable, type Neighbour } from './neighbours.ts';
import {
  decodePacket, INFINITE_METRIC, MeshPacketError, nodeIdFromHex, nodeIdHex,
  type ControlPacket, type DataType, type NodeId, type Packet, type Tlv,
} from './packet.ts';
import { ReplayGuard } from './replay.ts';
import { RouteTable, seqNewer } from './routes.ts';
import { TrickleTimer } from './trickle.ts';
import { DataPlane } from './data-plane.ts';
import { Hellos } from './hellos.ts';
import { Outbox } from './outbox.ts';
import type { MeshCounters, MeshLogger, MeshMessage, MeshTimers } from './types.ts';

export type { MeshCounters, MeshLogger, MeshMessage, MeshTimers } from './types.ts';

const SEQREQ_HOLD_MS = 1000;
const MAX_UPLINKS_PASSED_ON = 5;
/** an uplink box in use is kept while its metric is within this factor of the best */
const UPLINK_STICKINESS = 1.2;

/** seqnos reserved in the store at a time: one durable write per this many announcements */
export const SEQNO_BLOCK = 64;

/**
 * Where a box keeps its route seqno across restarts (the agent: `<state dir>/mesh-seqno`).
 * The box never announces a seqno beyond the last `reserve`d one, so that after a
 * restart it starts above everything relays may remember, and they take its first
 * announcement as fresh instead of waiting minutes for their routes to expire.
 */
export interface SeqnoStore {
  /** the last value passed to reserve() before this start (0 if none) */
  start(): number;
  /** store durably, before returning, that seqnos up to `upTo` may be in use */
  reserve(upTo: number): void;
}

export const DEFAULT_TIMERS: MeshTimers = { helloMinMs: 250, helloMaxMs: 5000, updateMinMs: 500, updateMaxMs: 60_000, ackTimeoutMs: 150, helloMissesDown: 2 };

export interface MeshNodeOptions {
  id: NodeId;
  key: Uint8Array;
  /** rises at every start of the box (replay protection) */
  epoch: number;
  clock: Clock;
  links: Link[];
  timers?: Partial<MeshTimers>;
  hopLimit?: number;
  /** payload bytes per fragment: fits the smallest link of the mesh */
  fragmentBytes?: number;
  random?: () => number;
  log?: MeshLogger;
  /** keeps the route seqno across restarts; without it a box starts from 0 */
  seqno?: SeqnoStore;
}

export class MeshNode {
  readonly id: NodeId;
  readonly idHex: string;
  readonly links: Link[];
  readonly counters: MeshCounters = {
    controlFrames: 0, controlBytes: 0, dataFrames: 0, dataBytes: 0, ackFrames: 0, ackBytes: 0, forwarded: 0, delivered: 0,
    heldForBudget: 0, dropped: { noRoute: 0, hopLimit: 0, unacknowledged: 0 }, rejected: { mac: 0, replay: 0, malformed: 0 },
  };
  private readonly key: Uint8Array;
  private readonly epoch: number;
  private readonly clock: Clock;
  private readonly timers: MeshTimers;
  private readonly hopLimit: number;
  private readonly random: () => number;
  private readonly log: MeshLogger | undefined;
  private readonly neighbours: NeighbourTable;
  private readonly data: DataPlane;
  private readonly routes = new RouteTable();
  private readonly replay = new ReplayGuard();
  private readonly outbox: Outbox;
  private readonly hellos: Hellos;
  private readonly updateTimer: TrickleTimer;
  private readonly seqreqsSeen: RecentSet;
  private readonly triggered = new Set<string>();
  private triggerTimer: TimerHandle | undefined;
  /** while starved of every uplink: when to ask again (a request or its answer may be lost) */
  private starvedTimer: TimerHandle | undefined;
  private readonly starvedAsked = new Map<string, number>();
  private readonly probed = new Map<string, number>();
  /** sources we asked (or passed on a request) for a new seqno, until when */
  private readonly requested = new Map<string, number>();
  private readonly answeredAt: number[] = [];
  private passedOn = new Set<string>();
  private ownSeqno = 0;
  private readonly seqnoStore: SeqnoStore | undefined;
  /** the highest seqno the store allows without another write */
  private seqnoReserved = 0;
  private announcing: 'no' | 'node' | 'uplink' = 'no';
  private uplinkInUse: string | undefined;
  private handler: ((message: MeshMessage) => void) | undefined;
  private running = false;

  constructor(options: MeshNodeOptions) {
    this.id = options.id;
    this.idHex = nodeIdHex(options.id);
    this.key = options.key;
    this.epoch = options.epoch;
    this.clock = options.clock;
    this.links = options.links;
    this.timers = { ...DEFAULT_TIMERS, ...options.timers };
    this.hopLimit = options.hopLimit ?? 16;
    this.random = options.random ?? Math.random;
    this.log = options.log;
    this.seqnoStore = options.seqno;
    if (this.seqnoStore) {
      this.ownSeqno = this.seqnoStore.start() & 0xffff;
      this.seqnoReserved = (this.ownSeqno + SEQNO_BLOCK) & 0xffff;
      this.seqnoStore.reserve(this.seqnoReserved);
    }
    this.neighbours = new NeighbourTable(this.clock, {
      changed: (n, appeared) => this.neighbourChanged(n, appeared),
    }, { slackMs: (link) => 100 + 8 * this.links[link]!.airtimeMs(64), downAfterMisses: this.timers.helloMissesDown });
    this.outbox = new Outbox({ id: this.id, key: this.key, epoch: this.epoch, links: this.links, counters: this.counters });
    this.data = new DataPlane({
      id: this.id, clock: this.clock, links: this.links, neighbours: this.neighbours, counters: this.counters,
      timers: this.timers, hopLimit: options.hopLimit ?? 16, fragmentBytes: options.fragmentBytes ?? 180, random: this.random,
      routeVia: (destHex, avoid) => this.routeAvoiding(destHex, avoid)?.via,
      bestUplink: (avoid) => this.bestUplink(avoid),
      seal: (packet) => this.outbox.seal(packet),
      reselect: () => this.reselect(),
      deliver: (message) => this.handler?.(message),
      log: this.log,
    });
    // A request seen is not passed on again while an answer may still be travelling.
    this.seqreqsSeen = new RecentSet(1024, Math.max(SEQREQ_HOLD_MS, 8 * this.timers.helloMinMs));
    this.hellos = new Hellos({
      links: this.links.length, clock: this.clock, timers: this.timers, neighbours: this.neighbours, random: this.random,
      send: (linkIndex, tlvs) => this.outbox.sendControl(linkIndex, tlvs),
    });
    this.updateTimer = new TrickleTimer(this.clock, this.timers.updateMinMs, this.timers.updateMaxMs, () => this.sendFullUpdate(), this.random);
    this.links.forEach((link, i) => link.onReceive((frame) => this.receive(i, frame)));
  }

  start(): void {
    this.running = true;
    this.hellos.start();
    this.updateTimer.start();
  }

  stop(): void {
    this.running = false;
    this.hellos.stop();
    this.updateTimer.stop();
    this.neighbours.stop();
    this.clock.clearTimeout(this.triggerTimer);
    this.clock.clearTimeout(this.starvedTimer);
    this.data.stop();
  }

  onMessage(handler: (message: MeshMessage) => void): void {
    this.handler = handler;
  }

  /**
   * What this box offers the mesh: 'uplink' while its MQTT uplink is up (a default route
   * for the others), 'node' to be reachable by name only, 'no' for nothing. A change is
   * announced at once with a new sequence number; a withdrawal is a retraction.
   */
  announce(what: 'no' | 'node' | 'uplink'): void {
    if (what === this.announcing) return;
    this.announcing = what;
    this.setOwnSeqno((this.ownSeqno + 1) & 0xffff);
    this.trigger(this.idHex);
    this.updateTimer.reset();
  }

  /**
   * The uplink box this box sends to: the best by metric, but the one in use stays while
   * it is not much worse, so that its compression reference, receipts and reverse routes
   * stay with one box rather than following every wobble of the metrics.
   */
  bestUplink(avoid?: ReadonlySet<string>): { id: NodeId; idHex: string; metric: number; via: string } | undefined {
    let best: { id: NodeId; idHex: string; metric: number; via: string } | undefined;
    let current: typeof best;
    for (const selected of this.routes.allSelected()) {
      if (!selected.uplink) continue;
      const r = avoid?.size ? this.routeAvoiding(selected.sourceHex, avoid) : selected;
      if (!r) continue;
      const candidate = { id: r.source, idHex: r.sourceHex, metric: r.total, via: r.via };
      if (!best || r.total < best.metric) best = candidate;
      if (r.sourceHex === this.uplinkInUse) current = candidate;
    }
    return current && best && current.metric <= best.metric * UPLINK_STICKINESS ? current : best;
  }

  /** The selected route to a source, or where it goes through one of `avoid`, the best feasible other. */
  private routeAvoiding(sourceHex: string, avoid: ReadonlySet<string> | undefined) {
    const selected = this.routes.selectedRoute(sourceHex);
    if (!avoid?.size || (selected && !avoid.has(selected.via))) return selected;
    return this.routes.alternative(sourceHex, this.clock.now(), (via) => this.linkCost(via), avoid);
  }

  private linkCost(via: string): number {
    const n = this.neighbours.get(via);
    return n ? this.neighbours.cost(n) : INFINITE_METRIC;
  }

  /**
   * Sends a reading (or the box's status) to the uplink box chosen by bestUplink(), which
   * stays in use; false if there is none. `done` hears whether the first hop took it.
   */
  sendToUplink(payload: Uint8Array, done?: (taken: boolean) => void, type: 'reading' | 'status' | 'report' = 'reading'): boolean {
    const uplink = this.bestUplink();
    this.uplinkInUse = uplink?.idHex;
    return uplink !== undefined && this.data.send(uplink.id, type, payload, done);
  }

  /** Sends a message to `dest`, fragmented; false if there is no route to it now. */
  send(dest: NodeId, type: DataType, payload: Uint8Array): boolean {
    return this.data.send(dest, type, payload);
  }

  status() {
    const now = this.clock.now();
    return {
      node: this.idHex,
      epoch: this.epoch,
      announcing: this.announcing,
      links: this.links.map((l) => ({ name: l.name, address: l.address, mtu: l.mtu, ...l.stats })),
      neighbours: this.neighbours.all().map((n) => ({
        node: n.idHex, link: this.links[n.link]!.name, address: n.address,
        cost: this.neighbours.cost(n), rxcost: this.neighbours.rxcost(n), txcost: n.txcost,
        helloIntervalMs: n.intervalMs, heardMsAgo: Math.round(now - n.lastHeard),
        ...(n.rssi !== undefined ? { rssi: n.rssi } : {}), ...(n.snr !== undefined ? { snr: n.snr } : {}),
      })),
      routes: this.routes.all().map((r) => {
        const chosen = this.routes.selectedRoute(r.sourceHex);
        const n = this.neighbours.get(r.via);
        return {
          dest: r.sourceHex, uplink: r.uplink, seqno: r.seqno, metric: r.metric,
          via: n?.idHex ?? null, link: n ? this.links[n.link]!.name : null,
          total: n ? Math.min(INFINITE_METRIC, r.metric + this.neighbours.cost(n)) : INFINITE_METRIC,
          selected: chosen?.via === r.via,
        };
      }),
      counters: this.counters,
      controlTlvs: this.outbox.controlTlvs,
    };
  }

  // ---- receiving ----

  private receive(linkIndex: number, frame: ReceivedFrame): void {
    if (!this.running) return;
    if (frame.to !== undefined && frame.to !== this.links[linkIndex]!.address) {
      try {
        const packet = decodePacket(frame.data, this.key);
        this.neighbours.heard(`${linkIndex}/${frame.from}`);
        if (packet.kind === 'data') this.data.overheard(`${linkIndex}/${frame.from}`, packet);
      } catch { /* a frame for another box that we cannot read: not ours to judge */ }
      return;
    }
    let packet: Packet;
    try {
      packet = decodePacket(frame.data, this.key);
    } catch (err) {
      if (err instanceof MeshPacketError && /MAC/.test(err.message)) this.counters.rejected.mac++;
      else this.counters.rejected.malformed++;
      this.log?.debug(`dropped a packet from ${this.links[linkIndex]!.name} ${frame.from}: ${(err as Error).message}`);
      return;
    }
    const senderHex = nodeIdHex(packet.sender);
    if (senderHex === this.idHex) return; // our own, echoed by the medium
    const verdict = this.replay.check(senderHex, packet.epoch, packet.counter);
    if (verdict !== 'fresh') {
      this.counters.rejected.replay++;
      this.log?.debug(`dropped a ${verdict} packet from ${senderHex} (epoch ${packet.epoch}, counter ${packet.counter})`);
      return;
    }
    const neighbourKey = `${linkIndex}/${frame.from}`;
    this.neighbours.heard(neighbourKey);
    switch (packet.kind) {
      case 'control':
        this.receiveControl(linkIndex, frame, packet);
        break;
      case 'data':
        this.data.receive(neighbourKey, frame, linkIndex, packet);
        break;
      case 'ack':
        this.data.ack(neighbourKey, packet.acked);
        break;
    }
  }

  private receiveControl(linkIndex: number, frame: ReceivedFrame, packet: ControlPacket): void {
    const key = `${linkIndex}/${frame.from}`;
    const hello = packet.tlvs.find((t): t is Extract<Tlv, { t: 'hello' }> => t.t === 'hello');
    const touched = new Set<string>();
    let neighbour = this.neighbours.get(key);
    if (hello) neighbour = this.neighbours.hello(linkIndex, frame.from, packet.sender, hello.seq, hello.intervalMs, { rssi: frame.rssi, snr: frame.snr }, packet.epoch);
    for (const tlv of packet.tlvs) {
      switch (tlv.t) {
        case 'ihu':
          if (nodeIdHex(tlv.neighbour) === this.idHex && neighbour) this.neighbours.ihu(key, tlv.rxcost, Math.max(3.5 * neighbour.intervalMs, 3000));
          break;
        case 'update':
          if (neighbour) touched.add(this.receiveUpdate(neighbour, tlv));
          break;
        case 'seqreq':
          if (neighbour) this.receiveSeqreq(neighbour, tlv);
          break;
        case 'routereq':
          // A neighbour that is new to us, or in doubt about us: one hello and our routes, now.
          this.answerRequest(linkIndex);
          break;
      }
    }
    touched.delete(this.idHex);
    if (touched.size) this.reselect(touched);
  }

  private receiveUpdate(neighbour: Neighbour, tlv: Extract<Tlv, { t: 'update' }>): string {
    const sourceHex = nodeIdHex(tlv.source);
    if (sourceHex === this.idHex) return sourceHex;
    this.routes.update({
      source: tlv.source, sourceHex, via: neighbour.key, seqno: tlv.seqno, metric: tlv.metric, uplink: tlv.uplink,
      expires: this.clock.now() + this.timers.updateMaxMs * 3.5,
    });
    return sourceHex;
  }

  private receiveSeqreq(neighbour: Neighbour, tlv: Extract<Tlv, { t: 'seqreq' }>): void {
    const sourceHex = nodeIdHex(tlv.source);
    if (this.seqreqsSeen.seenBefore(sourceHex, this.clock.now())) return;
    if (sourceHex === this.idHex) {
      if (this.announcing === 'no') return;
      if (!seqNewer(this.ownSeqno, tlv.seqno)) this.setOwnSeqno(tlv.seqno);
      this.trigger(this.idHex);
      return;
    }
    const route = this.routes.selectedRoute(sourceHex);
    if (route && !seqNewer(tlv.seqno, route.seqno)) {
      this.trigger(sourceHex);
      return;
    }
    // Pass the request on toward the source, never back where it came from.
    if (route && tlv.hops > 1 && route.via !== neighbour.key) {
      const via = this.neighbours.get(route.via);
      if (via) {
        this.requested.set(sourceHex, this.clock.now() + 8 * this.timers.helloMinMs);
        this.outbox.sendControl(via.link, [{ ...tlv, hops: tlv.hops - 1 }], via.address);
      }
    }
  }

  // ---- announcing ----

  private neighbourChanged(n: Neighbour, appeared: boolean): void {
    if (appeared) {
      // A newcomer learns our routes at once, and we ask for its.
      this.outbox.sendControl(n.link, [...this.hellos.repeat(n.link), { t: 'routereq' }], n.address);
      this.answerRequest(n.link);
    }
    if (this.neighbours.cost(n) >= INFINITE_METRIC && this.neighbours.get(n.key)) {
      // In doubt: ask the neighbour for hellos now rather than at its next (maybe minutes
      // away), but not so often that a congested channel gets more congested.
      const now = this.clock.now();
      if ((this.probed.get(n.key) ?? -Infinity) <= now - Math.max(4 * this.timers.helloMinMs, this.timers.helloMaxMs / 4)) {
        this.probed.set(n.key, now);
        this.outbox.sendControl(n.link, [...this.hellos.repeat(n.link), { t: 'routereq' }], n.address);
      }
    }
    if (!this.neighbours.get(n.key)) this.routes.dropVia(n.key);
    this.reselect();
  }

  /**
   * One hello (with our IHUs) and our routes on a link, at most once per shortest hello
   * interval: answers a request without resetting the timers of a whole dense mesh.
   */
  private answerRequest(linkIndex: number): void {
    const now = this.clock.now();
    if ((this.answeredAt[linkIndex] ?? -Infinity) > now - this.timers.helloMinMs) return;
    this.answeredAt[linkIndex] = now;
    this.outbox.sendControl(linkIndex, [...this.hellos.now(linkIndex), ...this.routeTlvs()]);
  }

  private reselect(only?: Set<string>): void {
    const { changed, renewed, starved, stuck } = this.routes.select(this.clock.now(), (via) => this.linkCost(via), only);
    // Only the nearest few uplinks are passed on (readings need one; a relay with no
    // route to the uplink a reading names sends it to its own): control traffic does not
    // grow with the number of uplinks in a big mesh.
    const next = this.announceable();
    for (const sourceHex of changed) if (next.has(sourceHex) || this.passedOn.has(sourceHex)) this.trigger(sourceHex);
    for (const sourceHex of next) if (!this.passedOn.has(sourceHex)) this.trigger(sourceHex);
    for (const sourceHex of this.passedOn) if (!next.has(sourceHex)) this.trigger(sourceHex);
    this.passedOn = next;
    // A newer seqno travels on at once only toward those who asked for it.
    const now = this.clock.now();
    for (const sourceHex of renewed) {
      if ((this.requested.get(sourceHex) ?? -Infinity) > now) {
        this.requested.delete(sourceHex);
        this.trigger(sourceHex);
      }
    }
    // A box that can reach some uplink needs no other: ask for a new seqno only when
    // none is reachable, and only for the most promising one.
    const uplinkStarved = starved.filter((s) => this.routes.all().some((r) => r.sourceHex === s && r.uplink));
    const otherStarved = starved.filter((s) => !uplinkStarved.includes(s));
    if (uplinkStarved.length && !this.bestUplink()) {
      this.askForSeqno(uplinkStarved[0]!);
      // On a radio a request or its answer is easily lost, and nothing else may happen
      // for minutes (the next periodic update with a new seqno): ask again while starved.
      if (!this.starvedTimer) {
        this.starvedTimer = this.clock.setTimeout(() => {
          this.starvedTimer = undefined;
          if (this.running) this.reselect();
        }, this.seqreqHoldMs() * (1 + this.random() * 0.25));
      }
    }
    for (const sourceHex of otherStarved) this.askForSeqno(sourceHex);
    // A route in use (ours, or one we pass on) stuck on a link that stopped carrying data,
    // while a better one is unfeasible, asks for a new seqno too.
    for (const sourceHex of stuck) {
      const via = this.routes.selectedRoute(sourceHex)?.via;
      const failing = via !== undefined && (this.neighbours.get(via)?.dataFailures ?? 0) > 0;
      if (failing && (sourceHex === this.uplinkInUse || this.passedOn.has(sourceHex))) this.askForSeqno(sourceHex);
    }
  }

  /** Sources this box passes on: every node source, and its nearest uplinks (hysteresis keeps the set stable). */
  private announceable(): Set<string> {
    const selected = this.routes.allSelected();
    const rank = (r: { sourceHex: string; total: number }) => (this.passedOn.has(r.sourceHex) ? r.total * 0.8 : r.total);
    const uplinks = selected.filter((r) => r.uplink).sort((a, b) => rank(a) - rank(b)).slice(0, MAX_UPLINKS_PASSED_ON);
    return new Set([...uplinks.map((r) => r.sourceHex), ...selected.filter((r) => !r.uplink).map((r) => r.sourceHex)]);
  }

  private askForSeqno(sourceHex: string): void {
    const now = this.clock.now();
    if ((this.starvedAsked.get(sourceHex) ?? -Infinity) > now - this.seqreqHoldMs()) return;
    this.starvedAsked.set(sourceHex, now);
    const fd = this.routes.feasibilityOf(sourceHex);
    const source = this.routes.all().find((r) => r.sourceHex === sourceHex)?.source;
    if (!fd || !source) return;
    const tlv: Tlv = { t: 'seqreq', source, seqno: (fd.seqno + 1) & 0xffff, hops: this.hopLimit };
    this.requested.set(sourceHex, now + 8 * this.timers.helloMinMs);
    this.links.forEach((_, i) => this.outbox.sendControl(i, [tlv]));
  }

  /** how long a seqno request is left to be answered before it is sent again */
  private seqreqHoldMs(): number {
    return Math.max(SEQREQ_HOLD_MS, 8 * this.timers.helloMinMs);
  }

  private trigger(sourceHex: string): void {
    this.triggered.add(sourceHex);
    if (this.triggerTimer) return;
    // A short jittered delay merges the changes of one event into one packet.
    this.triggerTimer = this.clock.setTimeout(() => {
      this.triggerTimer = undefined;
      const tlvs = [...this.triggered].map((s) => this.updateTlv(s)).filter((t): t is Tlv => t !== undefined);
      this.triggered.clear();
      if (tlvs.length) this.links.forEach((_, i) => this.outbox.sendControl(i, tlvs));
    }, 5 + this.random() * 30);
  }

  private updateTlv(sourceHex: string): Tlv | undefined {
    if (sourceHex === this.idHex) {
      const metric = this.announcing === 'no' ? INFINITE_METRIC : 0;
      return { t: 'update', source: this.id, seqno: this.ownSeqno, metric, uplink: this.announcing === 'uplink' };
    }
    const route = this.routes.selectedRoute(sourceHex);
    if (route && this.passedOn.has(sourceHex)) {
      this.routes.announced(sourceHex, route.seqno, route.total);
      return { t: 'update', source: route.source, seqno: route.seqno, metric: route.total, uplink: route.uplink };
    }
    const known = this.routes.all().find((r) => r.sourceHex === sourceHex);
    const fd = this.routes.feasibilityOf(sourceHex);
    if (!known && !fd) return undefined;
    // A retraction: those routing through us must look elsewhere.
    return { t: 'update', source: known?.source ?? nodeIdFromHex(sourceHex), seqno: fd?.seqno ?? known?.seqno ?? 0, metric: INFINITE_METRIC, uplink: false };
  }

  private sendFullUpdate(): void {
    // A new seqno with every periodic announcement (as DSDV does) lets routes that became
    // unfeasible through metric noise become feasible again without a request.
    if (this.announcing !== 'no') this.setOwnSeqno((this.ownSeqno + 1) & 0xffff);
    const tlvs = this.routeTlvs();
    if (tlvs.length) this.links.forEach((_, i) => this.outbox.sendControl(i, tlvs));
  }

  /** Every change of our seqno goes through here: it stays within what the store reserved. */
  private setOwnSeqno(seqno: number): void {
    if (this.seqnoStore && !seqNewer(this.seqnoReserved, seqno)) {
      this.seqnoReserved = (seqno + SEQNO_BLOCK) & 0xffff;
      this.seqnoStore.reserve(this.seqnoReserved);
    }
    this.ownSeqno = seqno;
  }

  private routeTlvs(): Tlv[] {
    const tlvs: Tlv[] = [];
    if (this.announcing !== 'no') tlvs.push(this.updateTlv(this.idHex)!);
    for (const sourceHex of this.passedOn) {
      const tlv = this.updateTlv(sourceHex);
      if (tlv) tlvs.push(tlv);
    }
    return tlvs;
  }
}
