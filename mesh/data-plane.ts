// The data plane of a mesh router: messages split into fragments and forwarded hop by
// hop to their destination (a reading to the uplink its origin chose), one frame in
// flight per neighbour, acknowledged (passively on radios, where the next hop's relay is
// the ack), retried with backoff and rerouted once; duplicates
// suppressed, reverse routes kept for receipts, frames held briefly when no route exists.
// A frame dropped here is not noticed to its origin: its receipt timeout recovers it.
import type { Clock, TimerHandle } from '../drivers/clock.ts';
import type { Link, ReceivedFrame } from '../drivers/link.ts';
import { ChannelLoad } from './channel-load.ts';
import { HopSender, type DataFields, type PendingFrame, type Unsealed } from './hop-sender.ts';
import { MessageEnds } from './message-ends.ts';
import { Reassembler, RecentSet, split } from './fragments.ts';
import type { Neighbour, NeighbourTable } from './neighbours.ts';
import { FOR_ANY_UPLINK, INFINITE_METRIC, nodeIdHex, type DataPacket, type DataType, type NodeId } from './packet.ts';
import type { MeshCounters, MeshLogger, MeshMessage, MeshTimers } from './types.ts';

export type { DataFields } from './hop-sender.ts';

/** What the data plane needs from the rest of the router. */
export interface DataPlaneHost {
  id: NodeId;
  clock: Clock;
  links: Link[];
  neighbours: NeighbourTable;
  counters: MeshCounters;
  timers: MeshTimers;
  hopLimit: number;
  fragmentBytes: number;
  random: () => number;
  /** the neighbour key of the selected route to a destination, or of the best feasible one through none of `avoid` */
  routeVia(destHex: string, avoid?: ReadonlySet<string>): string | undefined;
  /** the uplink box to send to (in use, or best): where a message a relay dropped goes again */
  bestUplink(avoid?: ReadonlySet<string>): { id: NodeId; idHex: string } | undefined;
  /** the metric of the selected route to a destination, if there is one */
  metricTo(destHex: string): number | undefined;
  /** adds sender, epoch and the next counter, and the MAC */
  seal(packet: Unsealed): { bytes: Uint8Array; counter: number };
  /** a link failed in the data plane: choose routes again */
  reselect(): void;
  deliver(message: MeshMessage): void;
  log?: MeshLogger;
}

/**
 * How long a relay keeps a frame it cannot pass on (no route, or every try unanswered),
 * in shortest hello intervals (60 s on LoRa): long enough for hellos, an update or a
 * seqno request to bring a route back, far shorter than the origin's wait for a receipt,
 * which would send the reading again only many minutes later.
 */
const HOLD_HELLO_INTERVALS = 15;
/** rounds of tries (hop-sender.ts) a held frame gets after its first try and its reroute failed */
const MAX_HELD_ROUNDS = 1;
const REVERSE_HOLD_MS = 1_800_000;
const OUTGOING_TRACKED = 256;
const NONE: ReadonlySet<string> = new Set();
/**
 * Hops a reading for an uplink may take beyond its route's metric in hops (the metric is
 * the expected transmission count, at least one per hop): room for a reroute or two, not
 * for a frame that wanders from uplink to uplink for 16 hops, each costing airtime on a
 * channel that is busy already.
 */
const HOP_LIMIT_SLACK = 4;

export class DataPlane {
  private readonly host: DataPlaneHost;
  private readonly idHex: string;
  private readonly clock: Clock;
  private readonly links: Link[];
  private readonly neighbours: NeighbourTable;
  private readonly counters: MeshCounters;
  private readonly timers: MeshTimers;
  private readonly random: () => number;
  private readonly reassembler = new Reassembler();
  private readonly recent = new RecentSet();
  private readonly reverse = new Map<string, { via: string; expires: number }>();
  private readonly hops: HopSender;
  /** frames waiting for the one in flight to a neighbour (stop-and-wait per hop) */
  private readonly waiting = new Map<string, { fields: DataFields; rerouted: boolean; cameFrom: string | undefined }[]>();
  private readonly inFlightTo = new Set<string>();
  private readonly held: { fields: DataFields; until: number; notBefore: number; cameFrom: string | undefined }[] = [];
  /** until when each frame (origin/msgId/index) may still be held: holding again does not extend it */
  private readonly holdUntil = new Map<string, { until: number; rounds: number }>();
  private heldTimer: TimerHandle | undefined;
  /** what the radios hear: retries back off by it */
  readonly load: ChannelLoad;
  /** starts anywhere: a box that restarts must not reuse ids that relays still remember as seen */
  private msgId: number;
  private readonly ends: MessageEnds;
  /** our own messages whose first hop has not yet taken every fragment */
  private readonly outgoing = new Map<number, { left: number; done: (taken: boolean) => void }>();

  constructor(host: DataPlaneHost) {
    this.host = host;
    this.idHex = nodeIdHex(host.id);
    this.clock = host.clock;
    this.links = host.links;
    this.neighbours = host.neighbours;
    this.counters = host.counters;
    this.timers = host.timers;
    this.random = host.random;
    this.load = new ChannelLoad(host.clock, host.links);
    this.hops = new HopSender({
      clock: host.clock, links: host.links, neighbours: host.neighbours, counters: host.counters, timers: host.timers, random: host.random, load: this.load,
      seal: (packet) => host.seal(packet),
      acknowledged: (p) => this.acknowledged(p),
      gaveUp: (p) => this.gaveUp(p),
      goneWhileWaiting: (neighbourKey, frame) => {
        // The neighbour went while we waited: this frame and those behind it take another way.
        const queued = this.waiting.get(neighbourKey) ?? [];
        this.waiting.delete(neighbourKey);
        this.inFlightTo.delete(neighbourKey);
        for (const q of [frame, ...queued]) this.forward(q.fields, true, q.cameFrom, neighbourKey);
      },
      goneBeforeRetry: (p) => this.nextFor(p.neighbourKey, p.bytes),
    });
    this.ends = new MessageEnds({
      clock: host.clock, retryMs: host.timers.helloMinMs, random: host.random, counters: host.counters, ...(host.log ? { log: host.log } : {}),
      deliver: (message) => host.deliver(message),
      send: (dest, type, payload, plain) => this.send(dest, type, payload, undefined, plain),
      // A reading goes to whichever uplink is best now: the way to the first may be what failed.
      sendAgain: (m) => this.send((FOR_ANY_UPLINK.includes(m.type) ? host.bestUplink()?.id : undefined) ?? m.dest, m.type, m.payload),
    });
    this.msgId = Math.floor(this.random() * 0x1_0000_0000) >>> 0;
  }

  /**
   * Sends a message to `dest`, fragmented; false if there is no route to it now. `done`
   * hears whether the first hop took every fragment (true) or the message was dropped here.
   */
  send(dest: NodeId, type: DataType, payload: Uint8Array, done?: (taken: boolean) => void, plain = false): boolean {
    const destHex = nodeIdHex(dest);
    if (!this.nextHop(destHex)) {
      this.counters.dropped.noRoute++;
      return false;
    }
    const msgId = this.msgId = (this.msgId + 1) >>> 0;
    const envelope = this.ends.envelope(msgId, dest, destHex, type, payload, plain);
    const parts = split(envelope, this.host.fragmentBytes);
    if (done) {
      this.outgoing.set(msgId, { left: parts.length, done });
      if (this.outgoing.size > OUTGOING_TRACKED) this.settle(this.outgoing.keys().next().value!, false);
    }
    const metric = FOR_ANY_UPLINK.includes(type) ? this.host.metricTo(destHex) : undefined;
    const hopLimit = metric !== undefined ? Math.min(this.host.hopLimit, Math.ceil(metric / 256) + HOP_LIMIT_SLACK) : this.host.hopLimit;
    parts.forEach((part, index) => this.forward({ origin: this.host.id, dest, msgId, index, count: parts.length, hopLimit, type, payload: part }));
    return true;
  }

  /** An ack from `neighbourKey` naming the counter of a frame we sent it. */
  ack(neighbourKey: string, acked: number): void {
    this.hops.ack(neighbourKey, acked);
  }

  /** A data packet for another box, overheard on a radio: our next hop relaying what we sent is its ack. */
  overheard(key: string, packet: DataPacket): void {
    this.hops.overheard(key, packet);
  }

  stop(): void {
    for (const msgId of [...this.outgoing.keys()]) this.settle(msgId, false);
    this.hops.stop();
    this.waiting.clear();
    this.inFlightTo.clear();
    this.clock.clearTimeout(this.heldTimer);
    this.held.length = 0;
    this.holdUntil.clear();
  }

  private acknowledged(pending: PendingFrame): void {
    if (this.isOwn(pending.fields)) {
      const out = this.outgoing.get(pending.fields.msgId);
      if (out && --out.left === 0) this.settle(pending.fields.msgId, true);
    }
    this.neighbours.dataDelivered(pending.neighbourKey);
    this.nextFor(pending.neighbourKey, pending.bytes);
  }

  receive(neighbourKey: string, frame: ReceivedFrame, linkIndex: number, packet: DataPacket): void {
    const ack = () => this.hops.sendAck(linkIndex, frame.from, packet.counter);
    const originHex = nodeIdHex(packet.origin);
    if (originHex === this.idHex) return ack();
    const now = this.clock.now();
    if (packet.type === 'reading') this.reverse.set(originHex, { via: neighbourKey, expires: now + REVERSE_HOLD_MS });
    // Every copy is acknowledged, so a sender whose ack was lost stops retrying. A copy for
    // another uplink is not one: a relay of an earlier version that could not reach the
    // uplink the reading first went to sent it to its own, a way that may lead back here.
    const destHex = nodeIdHex(packet.dest);
    if (this.recent.seenBefore(`${originHex}/${packet.msgId}/${packet.index}/${destHex}`, now)) return ack();
    if (destHex === this.idHex) {
      ack();
      const whole = this.reassembler.add(`${originHex}/${packet.msgId}`, packet.index, packet.count, packet.payload, now);
      if (whole) this.ends.arrived(packet, originHex, whole);
      return;
    }
    if (packet.hopLimit <= 1) {
      // A detour too long, mostly round a congested stretch. Not noticed to the origin:
      // on 200 simulated boxes the notices and the readings sent again on them cost more
      // airtime than they recovered (delivery 72-89 % with them, 95-99.7 % without).
      this.counters.dropped.hopLimit++;
      return ack();
    }
    this.counters.forwarded++;
    const { kind: _k, sender: _s, epoch: _e, counter: _c, ...fields } = packet;
    // Never back where it came from: that neighbour routes through us (or has no route).
    const sentOn = this.forward({ ...fields, hopLimit: packet.hopLimit - 1 }, false, neighbourKey);
    // On a radio the previous hop hears us relay the packet: that is its acknowledgement
    // (a passive ack), and saves a frame per hop. Otherwise, or if the relay waits, say so.
    if (sentOn !== linkIndex || !this.links[linkIndex]!.overhears) ack();
  }

  private isOwn(fields: DataFields): boolean {
    return nodeIdHex(fields.origin) === this.idHex;
  }

  /**
   * Frames dropped here for want of a route or an answer are not noticed to their origin:
   * they are mostly lost to congestion, where sending them again at once only adds to it
   * (the simulator's 200 boxes: delivery fell from 94 % to 66-89 % with such notices).
   */
  private dropped(fields: DataFields, why: 'noRoute' | 'unacknowledged'): void {
    this.counters.dropped[why]++;
    if (this.isOwn(fields)) this.settle(fields.msgId, false);
  }

  private settle(msgId: number, taken: boolean): void {
    const out = this.outgoing.get(msgId);
    if (!out) return;
    this.outgoing.delete(msgId);
    out.done(taken);
  }

  private nextHop(destHex: string, avoid: ReadonlySet<string> = NONE): Neighbour | undefined {
    const via = this.host.routeVia(destHex, avoid);
    const viaRoute = via !== undefined ? this.neighbours.get(via) : undefined;
    if (viaRoute && this.neighbours.cost(viaRoute) < INFINITE_METRIC) return viaRoute;
    // The way a reading came is the way its receipt goes back: that link just carried
    // data, whatever its hello statistics say.
    const back = this.reverse.get(destHex);
    if (back && back.expires > this.clock.now() && !avoid.has(back.via)) {
      const n = this.neighbours.get(back.via);
      if (n && n.dataFailures === 0) return n;
    }
    return undefined;
  }

  /**
   * The neighbour to send a frame to, never one of `avoid` (where it came from: that
   * neighbour routes through us or has none; or the one that just failed): the selected
   * route, else another feasible one (feasible routes never loop). A reading stays for the
   * uplink its origin chose, even with no way to it but back: sent on to another uplink,
   * it lacked the origin's compression reference (a ctxmiss and a plain copy crossed the
   * mesh again) and wandered between the uplinks' route trees, which lead through each
   * other; on 200 simulated boxes, readings so passed on cost more than they delivered
   * (seed 3: delivery 79 % with, 97 % without). It is held while a route may come back,
   * and its origin, which chooses its uplink again, sends it again on a failure or its
   * receipt timeout.
   */
  private route(fields: DataFields, avoid: ReadonlySet<string>): { fields: DataFields; neighbour: Neighbour } | undefined {
    // A radio neighbour that failed to acknowledge lately is passed by while a feasible
    // other way exists (its metric stays as announced: section 4), and used if none does.
    const failing = this.neighbours.all().filter((n) => this.neighbours.failing(n)).map((n) => n.key);
    const avoidFailing = failing.length ? new Set([...avoid, ...failing]) : avoid;
    const destHex = nodeIdHex(fields.dest);
    const neighbour = this.nextHop(destHex, avoidFailing) ?? this.nextHop(destHex, avoid);
    return neighbour && { fields, neighbour };
  }

  /** Sends toward `dest`; returns the link it went out on now, or undefined if it waits or is dropped. */
  private forward(original: DataFields, rerouted = false, cameFrom?: string, failed?: string): number | undefined {
    const avoid = new Set([cameFrom, failed].filter((k): k is string => k !== undefined));
    const chosen = this.route(original, avoid);
    if (!chosen) {
      this.hold(original, cameFrom);
      return undefined;
    }
    const { fields, neighbour } = chosen;
    // One frame in flight per neighbour: on a half-duplex radio, a second frame sent
    // behind the first would collide with the neighbour's acknowledgement or relay.
    if (this.inFlightTo.has(neighbour.key)) {
      const queue = this.waiting.get(neighbour.key) ?? [];
      if (queue.length >= 64) {
        this.dropped(fields, 'noRoute');
        return undefined;
      }
      queue.push({ fields, rerouted, cameFrom });
      this.waiting.set(neighbour.key, queue);
      return undefined;
    }
    this.inFlightTo.add(neighbour.key);
    // Over the data budget the frame waits (and the previous hop gets an explicit ack).
    const now = this.hops.allows(neighbour.link, fields.payload.length);
    this.hops.transmit({ fields, rerouted, cameFrom }, neighbour);
    return now ? neighbour.link : undefined;
  }

  /**
   * No route now: keep the frame a little while a seqno request or an update finds one
   * (a few shortest hello intervals), then drop it; the origin sends again on its timeout.
   */
  private hold(fields: DataFields, cameFrom: string | undefined, why: 'noRoute' | 'unacknowledged' = 'noRoute'): void {
    const now = this.clock.now();
    const id = `${nodeIdHex(fields.origin)}/${fields.msgId}/${fields.index}`;
    const before = this.holdUntil.get(id);
    const until = before?.until ?? now + HOLD_HELLO_INTERVALS * this.timers.helloMinMs;
    // Rounds of tries that all went unanswered: past a few, the channel is saturated
    // rather than briefly busy, and more tries only take airtime from other frames.
    const rounds = (before?.rounds ?? 0) + (why === 'unacknowledged' ? 1 : 0);
    // More than one neighbour failing at once: the channel round this box is congested,
    // not briefly busy, and another round of tries would only add to it.
    const congested = this.neighbours.all().filter((n) => this.neighbours.failing(n)).length > 1;
    if (until <= now || rounds > (congested ? 0 : MAX_HELD_ROUNDS)) {
      this.holdUntil.delete(id);
      return this.dropped(fields, why);
    }
    this.holdUntil.set(id, { until, rounds });
    if (this.holdUntil.size > 1024) this.holdUntil.delete(this.holdUntil.keys().next().value!);
    if (this.held.length >= 64) this.dropped(this.held.shift()!.fields, 'noRoute');
    // After a round of unanswered tries, a pause (a few seconds on LoRa) lets the burst pass.
    const notBefore = why === 'unacknowledged' ? now + (1 + this.random()) * 2 * this.timers.helloMinMs : now;
    this.held.push({ fields, until, notBefore, cameFrom });
    if (!this.heldTimer) this.heldTimer = this.clock.setTimeout(() => this.retryHeld(), this.timers.helloMinMs / 2);
  }

  private retryHeld(): void {
    this.heldTimer = undefined;
    const now = this.clock.now();
    const held = this.held.splice(0);
    for (const h of held) {
      if (h.notBefore > now) {
        this.held.push(h);
        continue;
      }
      if (this.route(h.fields, new Set(h.cameFrom === undefined ? [] : [h.cameFrom]))) this.forward(h.fields, true, h.cameFrom);
      else if (h.until > now) this.held.push(h);
      else {
        this.holdUntil.delete(`${nodeIdHex(h.fields.origin)}/${h.fields.msgId}/${h.fields.index}`);
        this.dropped(h.fields, 'noRoute');
      }
    }
    if (this.held.length && !this.heldTimer) this.heldTimer = this.clock.setTimeout(() => this.retryHeld(), this.timers.helloMinMs / 2);
  }

  /** The frame in flight to a neighbour is done with (acknowledged or given up): send the next. */
  private nextFor(neighbourKey: string, lastBytes: number): void {
    const queue = this.waiting.get(neighbourKey);
    if (!queue?.length) {
      this.waiting.delete(neighbourKey);
      this.inFlightTo.delete(neighbourKey);
      return;
    }
    // On a radio the neighbour is now relaying what it just got: sending the next frame
    // at once would land while it transmits (it cannot hear) or collide with its relay.
    const neighbour = this.neighbours.get(neighbourKey);
    const gap = neighbour ? 2 * this.links[neighbour.link]!.airtimeMs(lastBytes) : 0;
    const send = () => {
      this.inFlightTo.delete(neighbourKey);
      const next = queue.shift();
      if (!queue.length) this.waiting.delete(neighbourKey);
      if (next) this.forward(next.fields, next.rerouted, next.cameFrom);
    };
    if (gap > 0) this.clock.setTimeout(send, gap * (1 + this.random() * 0.5));
    else send();
  }

  /** Every try to a neighbour went unanswered (or it went): route around it. */
  private gaveUp(p: PendingFrame): void {
    const neighbour = this.neighbours.get(p.neighbourKey);
    // The data plane says the link is gone before the hellos do: route around it now.
    this.neighbours.dataFailed(p.neighbourKey, 4 * this.timers.helloMinMs, !this.links[neighbour?.link ?? 0]!.overhears);
    this.host.reselect();
    if (!p.rerouted) this.forward(p.fields, true, p.cameFrom, p.neighbourKey);
    // Rerouted already: on a radio the tries more likely met a burst of traffic than a
    // gone neighbour, so the frame waits and tries again (by whatever route is best
    // then) until its hold time is up.
    else this.hold(p.fields, p.cameFrom, 'unacknowledged');
    // What waited for this neighbour goes by the new route, or nowhere.
    const queued = this.waiting.get(p.neighbourKey) ?? [];
    this.waiting.delete(p.neighbourKey);
    this.inFlightTo.delete(p.neighbourKey);
    for (const q of queued) this.forward(q.fields, true, q.cameFrom, p.neighbourKey);
  }
}
