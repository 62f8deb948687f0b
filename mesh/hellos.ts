// Hellos on every link: a sequence number per link and a Trickle timer that sends them
// ever more seldom (helloMin to helloMax), each with this box's IHUs for the neighbours on
// that link: from them both ends learn the link's cost in both directions.
import type { Clock } from '../drivers/clock.ts';
import type { NeighbourTable } from './neighbours.ts';
import type { Tlv } from './packet.ts';
import { TrickleTimer } from './trickle.ts';
import type { MeshTimers } from './types.ts';

export class Hellos {
  private readonly neighbours: NeighbourTable;
  private readonly seq: number[];
  private readonly timers: TrickleTimer[];

  constructor(options: { links: number; clock: Clock; timers: MeshTimers; neighbours: NeighbourTable; random: () => number; send: (linkIndex: number, tlvs: Tlv[]) => void }) {
    this.neighbours = options.neighbours;
    this.seq = Array.from({ length: options.links }, () => Math.floor(options.random() * 0xffff));
    this.timers = this.seq.map((_, i) => new TrickleTimer(options.clock, options.timers.helloMinMs, options.timers.helloMaxMs,
      (next) => options.send(i, this.next(i, next)), options.random));
  }

  start(): void {
    for (const t of this.timers) t.start();
  }

  stop(): void {
    for (const t of this.timers) t.stop();
  }

  /** A new hello on a link, out of turn (answering a route request), with its IHUs. */
  now(linkIndex: number): Tlv[] {
    return this.next(linkIndex, this.timers[linkIndex]!.interval);
  }

  /**
   * Our last hello on a link again (same seq, so it counts once) with our IHUs: carried by
   * a route request, so that a neighbour that restarted and does not know us yet can answer
   * with an IHU at once instead of after our next hello, minutes away on a radio.
   */
  repeat(linkIndex: number): Tlv[] {
    return [{ t: 'hello', seq: this.seq[linkIndex]!, intervalMs: this.timers[linkIndex]!.interval }, ...this.ihus(linkIndex)];
  }

  private next(linkIndex: number, nextWithinMs: number): Tlv[] {
    this.seq[linkIndex] = (this.seq[linkIndex]! + 1) & 0xffff;
    return [{ t: 'hello', seq: this.seq[linkIndex]!, intervalMs: nextWithinMs }, ...this.ihus(linkIndex)];
  }

  private ihus(linkIndex: number): Tlv[] {
    return this.neighbours.onLink(linkIndex).map((n): Tlv => ({ t: 'ihu', neighbour: n.id, rxcost: this.neighbours.rxcost(n) }));
  }
}
