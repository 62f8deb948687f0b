// One box's mesh router: neighbours (from hellos, hellos.ts), Babel-style route
// announcements for the boxes that offer an uplink (or announce themselves), seqno
// requests when starved or stuck; the data plane (data-plane.ts) forwards over the routes
// chosen here, and every packet leaves through the outbox (outbox.ts). Knows links and
// packets, nothing of MQTT.
import type { Clock } from '../drivers/clock.ts';
import type { Link, ReceivedFrame } from '../drivers/link.ts';
import { NeighbourTable, type Neighbour } from './neighbours.ts';
import { decodePacket, INFINITE_METRIC, MeshPacketError, nodeIdHex, type ControlPacket, type DataType, type NodeId, type Packet, type Tlv } from './packet.ts';
import { ReplayGuard } from './replay.ts';
import { RouteTable, seqNewer } from './routes.ts';
import { TrickleTimer } from './trickle.ts';
import { DataPlane } from './data-plane.ts';
import { Hellos, hellosPerIhu } from './hellos.ts';
import { Outbox } from './outbox.ts';
import { Announcements } from './announcements.ts';
import type { MeshCounters, MeshLogger, MeshMessage, MeshTimers } from './types.ts';
import { OwnSeqno, type SeqnoStore } from './own-seqno.ts';
import { SeqnoRequests } from './seqno-requests.ts';
import { nodeStatus } from './node-status.ts';

export type { MeshCounters, MeshLogger, MeshMessage, MeshTimers } from './types.ts';
export { SEQNO_BLOCK, type SeqnoStore } from './own-seqno.ts';

/** an uplink box in use is kept while its metric is within this factor of the best */
const UPLINK_STICKINESS = 1.2;

export const DEFAULT_TIMERS: MeshTimers = { helloMinMs: 250, helloMaxMs: 3400, updateMinMs: 500, updateMaxMs: 60_000, ackTimeoutMs: 150, helloMissesDown: 2 };

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
    heldForBudget: 0, dropped: { noRoute: 0, hopLimit: 0, unacknowledged: 0 }, dropNotices: 0, resentOnNotice: 0, rejected: { mac: 0, replay: 0, malformed: 0 },
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
  private readonly announcements: Announcements;
  /** seqno requests, probes and answers lately sent */
  private readonly asked: SeqnoRequests;
  private readonly ownSeqno: OwnSeqno;
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
    this.ownSeqno = new OwnSeqno(options.seqno);
    const slackMs = (link: number) => 100 + 8 * this.links[link]!.airtimeMs(64);
    this.neighbours = new NeighbourTable(this.clock, {
      changed: (n, appeared) => this.neighbourChanged(n, appeared),
      probe: (n) => this.probe(n, true),
      probeSilent: (n) => this.probe(n, false),
    }, {
      slackMs, downAfterMisses: this.timers.helloMissesDown,
      // a round trip on a wired or IP link; radios are not probed for a late hello (section 4)
      probeMs: (link) => (this.links[link]!.overhears ? undefined : slackMs(link) + this.timers.ackTimeoutMs),
      // a radio neighbour that stopped acknowledging data: its answer may wait for another's
      // (a box answers once per shortest hello interval) and for the channel
      silentProbeMs: (link) => (this.links[link]!.overhears ? 2 * this.timers.helloMinMs + slackMs(link) : undefined),
    });
    this.outbox = new Outbox({ id: this.id, key: this.key, epoch: this.epoch, links: this.links, counters: this.counters });
    this.announcements = new Announcements({
      id: this.id, idHex: this.idHex, clock: this.clock, random: this.random, routes: this.routes,
      own: () => ({ seqno: this.ownSeqno.value, offer: this.announcing }),
      sendAll: (tlvs) => this.links.forEach((_, i) => this.outbox.sendControl(i, tlvs)),
    });
    this.data = new DataPlane({
      id: this.id, clock: this.clock, links: this.links, neighbours: this.neighbours, counters: this.counters,
      timers: this.timers, hopLimit: options.hopLimit ?? 16, fragmentBytes: options.fragmentBytes ?? 180, random: this.random,
      routeVia: (destHex, avoid) => this.routeAvoiding(destHex, avoid)?.via,
      bestUplink: (avoid) => this.bestUplink(avoid),
      metricTo: (destHex) => this.routes.selectedRoute(destHex)?.total,
      seal: (packet) => this.outbox.seal(packet),
      reselect: () => this.reselect(),
      deliver: (message) => this.handler?.(message),
      log: this.log,
    });
    this.asked = new SeqnoRequests({
      clock: this.clock, timers: this.timers, routes: this.routes, hopLimit: this.hopLimit, random: this.random,
      neighbours: this.neighbours, idHex: this.idHex,
      sendAll: (tlvs) => this.links.forEach((_, i) => this.outbox.sendControl(i, tlvs)),
      sendTo: (n, tlvs) => this.outbox.sendControl(n.link, tlvs, n.address),
      trigger: (sourceHex) => this.announcements.trigger(sourceHex),
      ownRequested: (seqno) => {
        if (this.announcing === 'no') return;
        if (!seqNewer(this.ownSeqno.value, seqno)) this.ownSeqno.set(seqno);
        this.announcements.trigger(this.idHex);
      },
    });
    this.hellos = new Hellos({
      links: this.links.map((l) => l.overhears), clock: this.clock, timers: this.timers, neighbours: this.neighbours, random: this.random,
      send: (linkIndex, tlvs) => this.outbox.sendControl(linkIndex, tlvs),
      along: (linkIndex, nextWithinMs) => this.dumpAlongHello(linkIndex, nextWithinMs),
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
    this.announcements.stop();
    this.asked.stop();
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
    this.ownSeqno.next();
    this.announcements.trigger(this.idHex);
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
    const { idHex, epoch, announcing, links, neighbours, routes, counters } = this;
    return nodeStatus({ idHex, epoch, announcing, links, neighbours, routes, counters, controlTlvs: this.outbox.controlTlvs, now: this.clock.now() });
  }

  // ---- receiving ----

  private receive(linkIndex: number, frame: ReceivedFrame): void {
    if (!this.running) return;
    this.data.load.frame(linkIndex, frame.data.length);
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
          if (nodeIdHex(tlv.neighbour) === this.idHex && neighbour) {
            this.neighbours.ihu(key, tlv.rxcost, Math.max(3.5 * hellosPerIhu(this.links[linkIndex]!.overhears) * neighbour.intervalMs, 3000));
          }
          break;
        case 'update':
          if (neighbour) touched.add(this.receiveUpdate(neighbour, tlv));
          break;
        case 'seqreq':
          if (neighbour) this.asked.receive(neighbour, tlv);
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

  // ---- announcing ----

  private neighbourChanged(n: Neighbour, appeared: boolean): void {
    if (appeared) {
      // A newcomer learns our routes at once, and we ask for its.
      this.outbox.sendControl(n.link, [...this.hellos.repeat(n.link), { t: 'routereq' }], n.address);
      this.answerRequest(n.link);
    }
    // In doubt: ask the neighbour for hellos now rather than at its next (maybe minutes away).
    if (this.neighbours.cost(n) >= INFINITE_METRIC && this.neighbours.get(n.key)) this.probe(n, false);
    if (!this.neighbours.get(n.key)) this.routes.dropVia(n.key);
    this.reselect();
  }

  /** A route request to one neighbour, with our last hello and IHUs: it answers with a hello and its routes. */
  private probe(n: Neighbour, now: boolean): boolean {
    if (!this.asked.mayProbe(n.key, now)) return false;
    this.outbox.sendControl(n.link, [...this.hellos.repeat(n.link), { t: 'routereq' }], n.address);
    return true;
  }

  /** One hello (with our IHUs) and our routes on a link: answers a request without resetting the timers of a whole dense mesh. */
  private answerRequest(linkIndex: number): void {
    if (!this.asked.mayAnswer(linkIndex)) return;
    this.outbox.sendControl(linkIndex, [...this.hellos.now(linkIndex), ...this.announcements.routeTlvs()]);
  }

  private reselect(only?: Set<string>): void {
    const { changed, renewed, starved, stuck } = this.routes.select(this.clock.now(), (via) => this.linkCost(via), only);
    this.announcements.reconsider(changed);
    // A newer seqno travels on at once only toward those who asked for it.
    for (const sourceHex of renewed) if (this.asked.answers(sourceHex)) this.announcements.trigger(sourceHex);
    this.asked.afterSelect(starved, stuck, {
      starvedOfUplinks: () => !this.bestUplink(),
      inUse: (sourceHex) => sourceHex === this.uplinkInUse || this.announcements.passesOn(sourceHex),
      again: () => this.running && this.reselect(),
    });
  }

  /**
   * A periodic hello is going out on a link: if the route dump is due before the hello
   * after it, the dump goes now, in the same frame (and on the other links with their
   * next hellos). With hellos as seldom as dumps (LoRa), a quiet box sends one control
   * frame per interval, not a hello and a dump that drift apart.
   */
  private dumpAlongHello(linkIndex: number, nextWithinMs: number): Tlv[] {
    if (!this.updateTimer.dueWithin(nextWithinMs)) return [];
    this.updateTimer.firedElsewhere();
    return this.sendFullUpdate(linkIndex);
  }

  /** The periodic route dump on every link but `alongHelloOn` (whose hello carries what this returns). */
  private sendFullUpdate(alongHelloOn?: number): Tlv[] {
    // A new seqno with every periodic announcement (as DSDV does) lets routes that became
    // unfeasible through metric noise become feasible again without a request.
    if (this.announcing !== 'no') this.ownSeqno.next();
    const tlvs = this.announcements.routeTlvs();
    // The dump carries the link's next hello too: one frame where a hello and a dump were two.
    if (tlvs.length) this.links.forEach((_, i) => i !== alongHelloOn && this.outbox.sendControl(i, [...this.hellos.instead(i), ...tlvs]));
    return tlvs;
  }
}
