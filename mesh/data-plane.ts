// The data plane of a mesh router: messages split into fragments and forwarded hop by
// hop, one frame in flight per neighbour, acknowledged (passively on radios, where the
// next hop's relay is the ack), retried with backoff and rerouted once; duplicates
// suppressed, reverse routes kept for receipts, frames held briefly when no route exists.
import type { Clock, TimerHandle } from '../drivers/clock.ts';
import type { Link, ReceivedFrame } from '../drivers/link.ts';
import { MessageCodec, openPlainEnvelope, plainEnvelope } from './compression.ts';
import { Reassembler, RecentSet, split } from './fragments.ts';
import type { Neighbour, NeighbourTable } from './neighbours.ts';
import { FOR_ANY_UPLINK, INFINITE_METRIC, OUTSIDE_COMPRESSION, MeshPacketError, nodeIdHex, type AckPacket, type DataPacket, type DataType, type NodeId } from './packet.ts';
import type { MeshCounters, MeshLogger, MeshMessage, MeshTimers } from './types.ts';

export type DataFields = Omit<DataPacket, 'kind' | 'sender' | 'epoch' | 'counter'>;
type Unsealed = ({ kind: 'data' } & DataFields) | Omit<AckPacket, 'sender' | 'epoch' | 'counter'>;

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
  /** the neighbour key of the selected route to a destination */
  routeVia(destHex: string): string | undefined;
  bestUplink(): { id: NodeId; idHex: string } | undefined;
  /** adds sender, epoch and the next counter, and the MAC */
  seal(packet: Unsealed): { bytes: Uint8Array; counter: number };
  /** a link failed in the data plane: choose routes again */
  reselect(): void;
  deliver(message: MeshMessage): void;
  log?: MeshLogger;
}

interface PendingFrame {
  fields: DataFields;
  /** the neighbour a relayed frame came from: never sent back there */
  cameFrom: string | undefined;
  neighbourKey: string;
  tries: number;
  timer: TimerHandle;
  rerouted: boolean;
  bytes: number;
}

const MAX_TRIES = 5;
const REVERSE_HOLD_MS = 1_800_000;
/** messages kept for sending again uncompressed when their destination lacks the reference */
const SENT_KEPT = 32;
const OUTGOING_TRACKED = 256;

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
  private readonly pending = new Map<number, PendingFrame>();
  /** frames waiting for the one in flight to a neighbour (stop-and-wait per hop) */
  private readonly waiting = new Map<string, { fields: DataFields; rerouted: boolean; cameFrom: string | undefined }[]>();
  private readonly inFlightTo = new Set<string>();
  private readonly held: { fields: DataFields; until: number; cameFrom: string | undefined }[] = [];
  private heldTimer: TimerHandle | undefined;
  /** starts anywhere: a box that restarts must not reuse ids that relays still remember as seen */
  private msgId: number;
  private readonly codec = new MessageCodec();
  private readonly sent = new Map<number, { dest: NodeId; type: DataType; payload: Uint8Array }>();
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
    const outside = OUTSIDE_COMPRESSION.includes(type);
    const envelope = outside ? plainEnvelope(payload) : this.codec.encode(destHex, payload, plain);
    if (!outside) {
      this.sent.set(msgId, { dest, type, payload });
      if (this.sent.size > SENT_KEPT) this.sent.delete(this.sent.keys().next().value!);
    }
    const parts = split(envelope, this.host.fragmentBytes);
    if (done) {
      this.outgoing.set(msgId, { left: parts.length, done });
      if (this.outgoing.size > OUTGOING_TRACKED) this.settle(this.outgoing.keys().next().value!, false);
    }
    parts.forEach((part, index) => this.forward({ origin: this.host.id, dest, msgId, index, count: parts.length, hopLimit: this.host.hopLimit, type, payload: part }));
    return true;
  }

  /** An ack from `neighbourKey` naming the counter of a frame we sent it. */
  ack(neighbourKey: string, acked: number): void {
    const pending = this.pending.get(acked);
    if (pending && pending.neighbourKey === neighbourKey) this.acknowledged(acked, pending);
  }

  stop(): void {
    for (const msgId of [...this.outgoing.keys()]) this.settle(msgId, false);
    for (const p of this.pending.values()) this.clock.clearTimeout(p.timer);
    this.pending.clear();
    this.waiting.clear();
    this.inFlightTo.clear();
    this.clock.clearTimeout(this.heldTimer);
    this.held.length = 0;
  }

  private acknowledged(counter: number, pending: PendingFrame): void {
    this.clock.clearTimeout(pending.timer);
    this.pending.delete(counter);
    if (this.isOwn(pending.fields)) {
      const out = this.outgoing.get(pending.fields.msgId);
      if (out && --out.left === 0) this.settle(pending.fields.msgId, true);
    }
    this.neighbours.dataDelivered(pending.neighbourKey);
    this.nextFor(pending.neighbourKey, pending.bytes);
  }

  receive(neighbourKey: string, frame: ReceivedFrame, linkIndex: number, packet: DataPacket): void {
    const ack = () => this.sendAck(linkIndex, frame.from, packet.counter);
    const originHex = nodeIdHex(packet.origin);
    if (originHex === this.idHex) return ack();
    const now = this.clock.now();
    if (packet.type === 'reading') this.reverse.set(originHex, { via: neighbourKey, expires: now + REVERSE_HOLD_MS });
    // Every copy is acknowledged, so a sender whose ack was lost stops retrying.
    if (this.recent.seenBefore(`${originHex}/${packet.msgId}/${packet.index}`, now)) return ack();
    const destHex = nodeIdHex(packet.dest);
    if (destHex === this.idHex) {
      ack();
      const whole = this.reassembler.add(`${originHex}/${packet.msgId}`, packet.index, packet.count, packet.payload, now);
      if (whole) this.arrived(packet, originHex, whole);
      return;
    }
    if (packet.hopLimit <= 1) {
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

  /** A whole message for this box: expanded, or (lacking its reference) asked for again. */
  private arrived(packet: DataPacket, originHex: string, envelope: Uint8Array): void {
    if (packet.type === 'ctxmiss') return this.resendPlain(envelope);
    if (packet.type === 'status') return this.deliverPlain(packet, originHex, envelope);
    let expanded;
    try {
      expanded = this.codec.decode(originHex, envelope);
    } catch (err) {
      this.counters.rejected.malformed++;
      this.host.log?.debug(`dropped a ${packet.type} message from ${originHex}: ${(err as MeshPacketError).message}`);
      return;
    }
    if ('missingReference' in expanded) {
      const ask = new Uint8Array(4);
      new DataView(ask.buffer).setUint32(0, packet.msgId);
      this.send(packet.origin, 'ctxmiss', ask);
      return;
    }
    this.counters.delivered++;
    this.host.deliver({ type: packet.type, origin: packet.origin, originHex, payload: expanded.message, compressed: expanded.compressed });
  }

  private isOwn(fields: DataFields): boolean {
    return nodeIdHex(fields.origin) === this.idHex;
  }

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

  /** The destination of a message we sent lacked its reference: send it again uncompressed. */
  private deliverPlain(packet: DataPacket, originHex: string, envelope: Uint8Array): void {
    let message: Uint8Array;
    try {
      message = openPlainEnvelope(envelope);
    } catch (err) {
      this.counters.rejected.malformed++;
      this.host.log?.debug(`dropped a ${packet.type} message from ${originHex}: ${(err as Error).message}`);
      return;
    }
    this.counters.delivered++;
    this.host.deliver({ type: packet.type, origin: packet.origin, originHex, payload: message, compressed: false });
  }

  private resendPlain(envelope: Uint8Array): void {
    let ask: Uint8Array;
    try {
      ask = openPlainEnvelope(envelope);
      if (ask.length !== 4) throw new MeshPacketError(`ctxmiss of ${ask.length} bytes, expected a 4-byte message id`);
    } catch (err) {
      this.counters.rejected.malformed++;
      this.host.log?.debug(`dropped a ctxmiss: ${(err as Error).message}`);
      return;
    }
    const msgId = new DataView(ask.buffer, ask.byteOffset).getUint32(0);
    const original = this.sent.get(msgId);
    if (!original) return;
    this.sent.delete(msgId);
    this.send(original.dest, original.type, original.payload, undefined, true);
  }

  /** A data packet for another box, overheard on a radio: our next hop relaying what we sent is its ack. */
  overheard(key: string, packet: DataPacket): void {
    const originHex = nodeIdHex(packet.origin);
    for (const [counter, p] of this.pending) {
      if (p.neighbourKey === key && p.fields.msgId === packet.msgId && p.fields.index === packet.index && nodeIdHex(p.fields.origin) === originHex) {
        this.acknowledged(counter, p);
        return;
      }
    }
  }

  private nextHop(destHex: string): Neighbour | undefined {
    const via = this.host.routeVia(destHex);
    const viaRoute = via !== undefined ? this.neighbours.get(via) : undefined;
    if (viaRoute && this.neighbours.cost(viaRoute) < INFINITE_METRIC) return viaRoute;
    // The way a reading came is the way its receipt goes back: that link just carried
    // data, whatever its hello statistics say.
    const back = this.reverse.get(destHex);
    if (back && back.expires > this.clock.now()) {
      const n = this.neighbours.get(back.via);
      if (n && n.dataFailures === 0) return n;
    }
    return undefined;
  }

  /** Sends toward `dest`; returns the link it went out on now, or undefined if it waits or is dropped. */
  private forward(fields: DataFields, rerouted = false, cameFrom?: string, failed?: string): number | undefined {
    const avoided = (n: Neighbour | undefined) => !n || n.key === cameFrom || n.key === failed;
    let neighbour = this.nextHop(nodeIdHex(fields.dest));
    if (avoided(neighbour) && FOR_ANY_UPLINK.includes(fields.type)) {
      // A reading (or status) is for any uplink: with no way to the one its origin chose, take ours.
      const other = this.host.bestUplink();
      if (other && other.idHex !== nodeIdHex(fields.dest)) {
        fields = { ...fields, dest: other.id };
        neighbour = this.nextHop(other.idHex);
      }
    }
    if (!neighbour || avoided(neighbour)) {
      this.hold(fields, cameFrom);
      return undefined;
    }
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
    this.transmit(fields, neighbour, 1, rerouted, cameFrom);
    return neighbour.link;
  }

  /**
   * No route now: keep the frame a little while a seqno request or an update finds one
   * (a few shortest hello intervals), then drop it; the origin sends again on its timeout.
   */
  private hold(fields: DataFields, cameFrom: string | undefined): void {
    if (this.held.length >= 64) this.dropped(this.held.shift()!.fields, 'noRoute');
    this.held.push({ fields, until: this.clock.now() + 2 * this.timers.helloMinMs, cameFrom });
    if (!this.heldTimer) this.heldTimer = this.clock.setTimeout(() => this.retryHeld(), this.timers.helloMinMs / 2);
  }

  private retryHeld(): void {
    this.heldTimer = undefined;
    const now = this.clock.now();
    const held = this.held.splice(0);
    for (const h of held) {
      const destHex = nodeIdHex(h.fields.dest);
      const hop = this.nextHop(destHex) ?? (FOR_ANY_UPLINK.includes(h.fields.type) ? this.nextHop(this.host.bestUplink()?.idHex ?? '') : undefined);
      if (hop && hop.key !== h.cameFrom) this.forward(h.fields, true, h.cameFrom);
      else if (h.until > now) this.held.push(h);
      else this.dropped(h.fields, 'noRoute');
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

  private transmit(fields: DataFields, neighbour: Neighbour, tries: number, rerouted: boolean, cameFrom: string | undefined): void {
    const { bytes, counter } = this.host.seal({ kind: 'data', ...fields });
    const link = this.links[neighbour.link]!;
    link.send(bytes, neighbour.address);
    this.counters.dataFrames++;
    this.counters.dataBytes += bytes.length;
    // The neighbour may be finishing a frame of its own before its ack goes out.
    const wait = this.timers.ackTimeoutMs + 3 * link.airtimeMs(bytes.length) + link.airtimeMs(40) + this.random() * 50;
    const timer = this.clock.setTimeout(() => this.unacknowledged(counter), wait);
    this.pending.set(counter, { fields, cameFrom, neighbourKey: neighbour.key, tries, timer, rerouted, bytes: bytes.length });
  }

  private unacknowledged(counter: number): void {
    const p = this.pending.get(counter);
    if (!p) return;
    this.pending.delete(counter);
    const neighbour = this.neighbours.get(p.neighbourKey);
    if (neighbour && p.tries < MAX_TRIES) {
      // A random backoff that grows with each try, so two senders that collided do not collide again.
      const airtime = this.links[neighbour.link]!.airtimeMs(p.bytes);
      this.clock.setTimeout(() => {
        const still = this.neighbours.get(p.neighbourKey);
        if (still) this.transmit(p.fields, still, p.tries + 1, p.rerouted, p.cameFrom);
        else this.nextFor(p.neighbourKey, p.bytes);
      }, this.random() * airtime * 2 ** p.tries);
      return;
    }
    // The data plane says the link is gone before the hellos do: route around it now.
    this.neighbours.dataFailed(p.neighbourKey, 4 * this.timers.helloMinMs, !this.links[neighbour?.link ?? 0]!.overhears);
    this.host.reselect();
    if (!p.rerouted) this.forward(p.fields, true, p.cameFrom, p.neighbourKey);
    else this.dropped(p.fields, 'unacknowledged');
    // What waited for this neighbour goes by the new route, or nowhere.
    const queued = this.waiting.get(p.neighbourKey) ?? [];
    this.waiting.delete(p.neighbourKey);
    this.inFlightTo.delete(p.neighbourKey);
    for (const q of queued) this.forward(q.fields, true, q.cameFrom, p.neighbourKey);
  }

  private sendAck(linkIndex: number, to: string, acked: number): void {
    const { bytes } = this.host.seal({ kind: 'ack', acked });
    this.links[linkIndex]!.send(bytes, to);
    this.counters.ackFrames++;
    this.counters.ackBytes += bytes.length;
  }
}
