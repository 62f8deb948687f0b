// The baseline the simulator measures against: managed flooding as community LoRa
// meshes do it. Every box rebroadcasts a packet it has not seen before, once, after a
// short random delay, until the hop limit (3) is spent. No routing state at all.
import type { Clock } from '../drivers/clock.ts';
import type { Link } from '../drivers/link.ts';
import { Decoder, Encoder } from 'cbor-x';
import { Reassembler, RecentSet, split } from './fragments.ts';
import { macOf, MAC_BYTES, nodeIdHex, type NodeId } from './packet.ts';

export const FLOOD_HOP_LIMIT = 3;

const encoder = new Encoder({ tagUint8Array: false, useRecords: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: false });

export class FloodNode {
  readonly id: NodeId;
  readonly idHex: string;
  readonly counters = { dataFrames: 0, dataBytes: 0, delivered: 0 };
  private readonly link: Link;
  private readonly clock: Clock;
  private readonly key: Uint8Array;
  private readonly random: () => number;
  private readonly fragmentBytes: number;
  private readonly seen = new RecentSet();
  private readonly reassembler = new Reassembler();
  private msgId = 0;
  private handler: ((origin: string, payload: Uint8Array) => void) | undefined;
  /** an uplink box keeps what reaches it */
  uplink = false;

  constructor(options: { id: NodeId; link: Link; clock: Clock; key: Uint8Array; random: () => number; fragmentBytes?: number }) {
    this.id = options.id;
    this.idHex = nodeIdHex(options.id);
    this.link = options.link;
    this.clock = options.clock;
    this.key = options.key;
    this.random = options.random;
    this.fragmentBytes = options.fragmentBytes ?? 180;
    this.link.onReceive((frame) => this.receive(frame.data));
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

  private broadcast(body: unknown[]): void {
    const encoded = encoder.encode(body);
    const out = new Uint8Array(encoded.length + MAC_BYTES);
    out.set(encoded);
    out.set(macOf(this.key, encoded), encoded.length);
    this.link.send(out);
    this.counters.dataFrames++;
    this.counters.dataBytes += out.length;
  }

  private receive(bytes: Uint8Array): void {
    let body: [Uint8Array, number, number, number, number, Uint8Array];
    try {
      body = decoder.decode(bytes.subarray(0, bytes.length - MAC_BYTES));
    } catch {
      return;
    }
    const [origin, msgId, index, count, hopsLeft, part] = body;
    const originHex = nodeIdHex(origin);
    if (this.seen.seenBefore(`${originHex}/${msgId}/${index}`, this.clock.now())) return;
    if (this.uplink) {
      const whole = this.reassembler.add(`${originHex}/${msgId}`, index, count, part, this.clock.now());
      if (whole) {
        this.counters.delivered++;
        this.handler?.(originHex, whole);
      }
    }
    if (hopsLeft > 1) {
      this.clock.setTimeout(() => this.broadcast([origin, msgId, index, count, hopsLeft - 1, part]), 50 + this.random() * 1000);
    }
  }
}
