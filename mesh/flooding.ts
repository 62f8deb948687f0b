// The baseline the simulator measures against: managed flooding as Meshtastic boxes do
// it (firmware 2.x, FloodingRouter and RadioInterface). The origin sends with hop limit
// 3; a box that hears a packet for the first time rebroadcasts it with the hop limit
// less one while the limit it heard is above 0 (three relays in all), after a delay
// drawn from a contention window that grows with the received SNR (a distant box, heard
// weakly, goes first: it extends the flood furthest); a box that hears someone else
// rebroadcast a packet it still holds drops its own copy. No routing state, no acks.
import type { Clock, TimerHandle } from '../drivers/clock.ts';
import type { Link, ReceivedFrame } from '../drivers/link.ts';
import { Decoder, Encoder } from 'cbor-x';
import { Reassembler, RecentSet, split } from './fragments.ts';
import { macOf, MAC_BYTES, nodeIdHex, type NodeId } from './packet.ts';
import type { LoraProfile } from '../drivers/radio/lora-airtime.ts';

export const FLOOD_HOP_LIMIT = 3;

/** Contention window sizes (as powers of two) and the SNR span mapped onto them (RadioInterface.h/.cpp). */
const CW_MIN = 3;
const CW_MAX = 8;
const SNR_MIN_DB = -20;
const SNR_MAX_DB = 15;

/** One contention slot: 8.5 symbols of CAD plus the radio's turnaround and processing, 7.6 ms. */
export function floodSlotMs(profile: Pick<LoraProfile, 'spreadingFactor' | 'bandwidthHz'>): number {
  return (8.5 * 2 ** profile.spreadingFactor) / (profile.bandwidthHz / 1000) + 0.2 + 0.4 + 7;
}

/**
 * The rebroadcast delay of a box in the default (client) role: past the window routers
 * use (2 · CWmax slots), a random number of slots below 2^CWsize, CWsize rising linearly
 * (in whole steps, as Arduino's map() does) from CWmin at −20 dB to CWmax at +15 dB.
 */
export function floodDelayMs(snrDb: number, slotMs: number, random: () => number): number {
  const snr = Math.min(SNR_MAX_DB, Math.max(SNR_MIN_DB, Math.trunc(snrDb)));
  const cwSize = Math.trunc(((snr - SNR_MIN_DB) * (CW_MAX - CW_MIN)) / (SNR_MAX_DB - SNR_MIN_DB)) + CW_MIN;
  return 2 * CW_MAX * slotMs + Math.floor(random() * 2 ** cwSize) * slotMs;
}

const encoder = new Encoder({ tagUint8Array: false, useRecords: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: false });

type FloodBody = [Uint8Array, number, number, number, number, Uint8Array];

export class FloodNode {
  readonly id: NodeId;
  readonly idHex: string;
  readonly counters = { dataFrames: 0, dataBytes: 0, delivered: 0, rebroadcastsCancelled: 0, overBudget: 0 };
  private readonly link: Link;
  private readonly clock: Clock;
  private readonly key: Uint8Array;
  private readonly random: () => number;
  private readonly fragmentBytes: number;
  private readonly slotMs: number;
  private readonly seen = new RecentSet();
  private readonly reassembler = new Reassembler();
  /** rebroadcasts waiting for their delay, by packet */
  private readonly queued = new Map<string, TimerHandle>();
  private msgId = 0;
  private handler: ((origin: string, payload: Uint8Array) => void) | undefined;
  /** an uplink box keeps what reaches it (and, as its destination, does not pass it on) */
  uplink = false;

  constructor(options: { id: NodeId; link: Link; clock: Clock; key: Uint8Array; random: () => number; profile: LoraProfile; fragmentBytes?: number }) {
    this.id = options.id;
    this.idHex = nodeIdHex(options.id);
    this.link = options.link;
    this.clock = options.clock;
    this.key = options.key;
    this.random = options.random;
    this.fragmentBytes = options.fragmentBytes ?? 180;
    this.slotMs = floodSlotMs(options.profile);
    this.link.onReceive((frame) => this.receive(frame));
  }

  onDelivered(handler: (origin: string, payload: Uint8Array) => void): void {
    this.handler = handler;
  }

  send(payload: Uint8Array): void {
    const msgId = ++this.msgId;
    const parts = split(payload, this.fragmentBytes);
    parts.forEach((part, index) => {
      this.seen.seenBefore(`${this.idHex}/${msgId}/${index}`, this.clock.now());
      this.broadcast([this.id, msgId, index, parts.length, FLOOD_HOP_LIMIT, part]);
    });
  }

  private encode(body: FloodBody): Uint8Array {
    const encoded = encoder.encode(body);
    const out = new Uint8Array(encoded.length + MAC_BYTES);
    out.set(encoded);
    out.set(macOf(this.key, encoded), encoded.length);
    return out;
  }

  private broadcast(body: FloodBody): void {
    const out = this.encode(body);
    this.link.send(out);
    this.counters.dataFrames++;
    this.counters.dataBytes += out.length;
  }

  private receive(frame: ReceivedFrame): void {
    const bytes = frame.data;
    let body: FloodBody;
    try {
      body = decoder.decode(bytes.subarray(0, bytes.length - MAC_BYTES));
    } catch {
      return;
    }
    const [origin, msgId, index, count, hopLimit, part] = body;
    const originHex = nodeIdHex(origin);
    const key = `${originHex}/${msgId}/${index}`;
    if (this.seen.seenBefore(key, this.clock.now())) {
      // Someone else rebroadcast what we hold: ours would add nothing.
      const timer = this.queued.get(key);
      if (timer) {
        this.clock.clearTimeout(timer);
        this.queued.delete(key);
        this.counters.rebroadcastsCancelled++;
      }
      return;
    }
    if (this.uplink) {
      const whole = this.reassembler.add(`${originHex}/${msgId}`, index, count, part, this.clock.now());
      if (whole) {
        this.counters.delivered++;
        this.handler?.(originHex, whole);
      }
      return;
    }
    if (hopLimit <= 0) return;
    const timer = this.clock.setTimeout(() => {
      this.queued.delete(key);
      const out = this.encode([origin, msgId, index, count, hopLimit - 1, part]);
      // Over the duty-cycle budget a Meshtastic box refuses to send: the rebroadcast is lost.
      if (this.link.budgetMs() < this.link.airtimeMs(out.length)) {
        this.counters.overBudget++;
        return;
      }
      this.link.send(out);
      this.counters.dataFrames++;
      this.counters.dataBytes += out.length;
    }, floodDelayMs(frame.snr ?? 0, this.slotMs, this.random));
    this.queued.set(key, timer);
  }
}
