// What a box puts on its links: every packet sealed with the box's id, its epoch, a
// counter that rises with each packet on any link (the receivers' replay window, docs/
// mesh.md section 3) and the MAC; control TLVs split over as many packets as a link's
// MTU needs; all of it counted.
import type { Link } from '../drivers/link.ts';
import { encodePacket, type ControlPacket, type NodeId, type Packet, type Tlv } from './packet.ts';
import type { MeshCounters } from './types.ts';

type Unsealed = Packet extends infer P ? (P extends Packet ? Omit<P, 'sender' | 'epoch' | 'counter'> : never) : never;

export class Outbox {
  private readonly id: NodeId;
  private readonly key: Uint8Array;
  private readonly epoch: number;
  private readonly links: Link[];
  private readonly counters: MeshCounters;
  private counter = 0;
  /** control TLVs sent, by type */
  readonly controlTlvs: Record<string, number> = {};

  constructor(options: { id: NodeId; key: Uint8Array; epoch: number; links: Link[]; counters: MeshCounters }) {
    this.id = options.id;
    this.key = options.key;
    this.epoch = options.epoch;
    this.links = options.links;
    this.counters = options.counters;
  }

  /** Adds sender, epoch and the next counter, and the MAC. */
  seal(packet: Unsealed): { bytes: Uint8Array; counter: number } {
    const counter = ++this.counter;
    return { counter, bytes: encodePacket({ ...packet, sender: this.id, epoch: this.epoch, counter } as Packet, this.key) };
  }

  /** Sends control TLVs on a link (to one neighbour, or all in range), split to fit its MTU. */
  sendControl(linkIndex: number, tlvs: Tlv[], to?: string): void {
    const link = this.links[linkIndex]!;
    for (const t of tlvs) this.controlTlvs[t.t] = (this.controlTlvs[t.t] ?? 0) + 1;
    let batch: Tlv[] = [];
    const flush = () => {
      if (!batch.length) return;
      const bytes = this.seal({ kind: 'control', tlvs: batch }).bytes;
      link.send(bytes, to);
      this.counters.controlFrames++;
      this.counters.controlBytes += bytes.length;
      batch = [];
    };
    for (const tlv of tlvs) {
      batch.push(tlv);
      if (this.encodeControl(batch).length > link.mtu) {
        batch.pop();
        flush();
        batch.push(tlv);
      }
    }
    flush();
  }

  /** The packet these TLVs would make, to measure it. */
  private encodeControl(tlvs: Tlv[]): Uint8Array {
    const packet: ControlPacket = { kind: 'control', sender: this.id, epoch: this.epoch, counter: this.counter + 1, tlvs };
    return encodePacket(packet, this.key);
  }
}
