// One hop of the data plane: a frame sent to a neighbour and kept until that neighbour
// acknowledges it (an ack packet, or on a radio, overheard relaying it: a passive ack),
// tried again after a random backoff that doubles with each try and grows with the
// channel's load (channel-load.ts), and held while the duty-cycle budget leaves no room
// for data (airtime-budget.ts). What happens to a frame after the last try is the data
// plane's to decide (data-plane.ts).
import type { Clock, TimerHandle } from '../drivers/clock.ts';
import type { Link } from '../drivers/link.ts';
import { BUDGET_POLL_MS, DataBudget } from './airtime-budget.ts';
import { retryBackoffMs, type ChannelLoad } from './channel-load.ts';
import type { Neighbour, NeighbourTable } from './neighbours.ts';
import { nodeIdHex, type AckPacket, type DataPacket } from './packet.ts';
import type { MeshCounters, MeshTimers } from './types.ts';

export type DataFields = Omit<DataPacket, 'kind' | 'sender' | 'epoch' | 'counter'>;
export type Unsealed = ({ kind: 'data' } & DataFields) | Omit<AckPacket, 'sender' | 'epoch' | 'counter'>;

/** A frame on its way to a neighbour. */
export interface HopFrame {
  fields: DataFields;
  /** the neighbour a relayed frame came from: never sent back there */
  cameFrom: string | undefined;
  rerouted: boolean;
}

export interface PendingFrame extends HopFrame {
  neighbourKey: string;
  tries: number;
  timer: TimerHandle;
  bytes: number;
}

/** What the hop sender needs from the data plane. */
export interface HopSenderHost {
  clock: Clock;
  links: Link[];
  neighbours: NeighbourTable;
  counters: MeshCounters;
  timers: MeshTimers;
  random: () => number;
  load: ChannelLoad;
  /** adds sender, epoch and the next counter, and the MAC */
  seal(packet: Unsealed): { bytes: Uint8Array; counter: number };
  /** the neighbour took the frame */
  acknowledged(frame: PendingFrame): void;
  /** every try went unanswered */
  gaveUp(frame: PendingFrame): void;
  /** the neighbour went while the frame waited for budget: it takes another way */
  goneWhileWaiting(neighbourKey: string, frame: HopFrame): void;
  /** the neighbour went before a retry: the frame is given up, the next may go */
  goneBeforeRetry(frame: PendingFrame): void;
}

const MAX_TRIES = 5;

export class HopSender {
  private readonly host: HopSenderHost;
  private readonly clock: Clock;
  private readonly budget: DataBudget;
  private readonly pending = new Map<number, PendingFrame>();
  /** frames waiting for duty-cycle budget */
  private readonly budgetWaits = new Set<TimerHandle>();

  constructor(host: HopSenderHost) {
    this.host = host;
    this.clock = host.clock;
    this.budget = new DataBudget(host.links);
  }

  /** Whether a data frame of `payloadBytes` may go on the link now (else it waits for budget). */
  allows(linkIndex: number, payloadBytes: number): boolean {
    return this.budget.allows(linkIndex, payloadBytes);
  }

  /** An ack from `neighbourKey` naming the counter of a frame we sent it. */
  ack(neighbourKey: string, acked: number): void {
    const pending = this.pending.get(acked);
    if (pending && pending.neighbourKey === neighbourKey) this.acknowledged(acked, pending);
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

  stop(): void {
    for (const p of this.pending.values()) this.clock.clearTimeout(p.timer);
    this.pending.clear();
    for (const timer of this.budgetWaits) this.clock.clearTimeout(timer);
    this.budgetWaits.clear();
  }

  private acknowledged(counter: number, pending: PendingFrame): void {
    this.clock.clearTimeout(pending.timer);
    this.pending.delete(counter);
    this.host.acknowledged(pending);
  }

  transmit(frame: HopFrame, neighbour: Neighbour, tries = 1): void {
    const { fields } = frame;
    if (!this.budget.allows(neighbour.link, fields.payload.length)) {
      this.host.counters.heldForBudget++;
      const timer = this.clock.setTimeout(() => {
        this.budgetWaits.delete(timer);
        const still = this.host.neighbours.get(neighbour.key);
        if (still) this.transmit(frame, still, tries);
        else this.host.goneWhileWaiting(neighbour.key, frame);
      }, BUDGET_POLL_MS);
      this.budgetWaits.add(timer);
      return;
    }
    const { bytes, counter } = this.host.seal({ kind: 'data', ...fields });
    const link = this.host.links[neighbour.link]!;
    link.send(bytes, neighbour.address);
    this.host.counters.dataFrames++;
    this.host.counters.dataBytes += bytes.length;
    // The neighbour may be finishing a frame of its own before its ack goes out.
    const wait = this.host.timers.ackTimeoutMs + 3 * link.airtimeMs(bytes.length) + link.airtimeMs(40) + this.host.random() * 50;
    const timer = this.clock.setTimeout(() => this.unacknowledged(counter), wait);
    this.pending.set(counter, { fields, cameFrom: frame.cameFrom, rerouted: frame.rerouted, neighbourKey: neighbour.key, tries, timer, bytes: bytes.length });
  }

  private unacknowledged(counter: number): void {
    const p = this.pending.get(counter);
    if (!p) return;
    this.pending.delete(counter);
    const neighbour = this.host.neighbours.get(p.neighbourKey);
    if (!neighbour || p.tries >= MAX_TRIES) return this.host.gaveUp(p);
    const airtime = this.host.links[neighbour.link]!.airtimeMs(p.bytes);
    this.clock.setTimeout(() => {
      const still = this.host.neighbours.get(p.neighbourKey);
      if (still) this.transmit(p, still, p.tries + 1);
      else this.host.goneBeforeRetry(p);
    }, retryBackoffMs(this.host.random, airtime, p.tries, this.host.load.busy(neighbour.link)));
  }

  sendAck(linkIndex: number, to: string, acked: number): void {
    const { bytes } = this.host.seal({ kind: 'ack', acked });
    this.host.links[linkIndex]!.send(bytes, to);
    this.host.counters.ackFrames++;
    this.host.counters.ackBytes += bytes.length;
  }
}
