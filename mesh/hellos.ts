// Hellos on every link: a sequence number per link and a Trickle timer that sends them
// ever more seldom (helloMin to helloMax), each with this box's IHUs for the neighbours on
// that link: from them both ends learn the link's cost in both directions.
import type { Clock } from '../drivers/clock.ts';
import type { NeighbourTable } from './neighbours.ts';
import type { Tlv } from './packet.ts';
import { TrickleTimer } from './trickle.ts';
import type { MeshTimers } from './types.ts';

/**
 * Hellos per IHU on a link: every hello on a radio (hellos are minutes apart there); every
 * fourth on a wired or IP link, and whenever what we would say changed (as Babel's IHU
 * interval): there hellos come every few seconds so that a silent neighbour is noticed
 * fast, and most of their IHUs would repeat the last.
 */
export function hellosPerIhu(overhears: boolean): number {
  return overhears ? 1 : 4;
}

export class Hellos {
  private readonly neighbours: NeighbourTable;
  private readonly seq: number[];
  private readonly timers: TrickleTimer[];
  private readonly perIhu: number[];
  /** hellos sent on each link without IHUs since the last with them */
  private readonly sinceIhu: number[];
  /** the rxcost last told each neighbour (by key) */
  private readonly told = new Map<string, number>();

  /**
   * `along`: TLVs that go with a periodic hello on a link (the route dump, when it is due
   * before the hello after this one): one frame where two would go.
   */
  constructor(options: {
    links: boolean[]; clock: Clock; timers: MeshTimers; neighbours: NeighbourTable; random: () => number; send: (linkIndex: number, tlvs: Tlv[]) => void;
    along?: (linkIndex: number, nextWithinMs: number) => Tlv[];
  }) {
    this.neighbours = options.neighbours;
    this.seq = options.links.map(() => Math.floor(options.random() * 0xffff));
    this.perIhu = options.links.map(hellosPerIhu);
    this.sinceIhu = options.links.map(() => 0);
    // On a wired or IP link hellos keep close to their stated interval: receivers expect
    // the next within it, and a late one sets off a probe (section 4). A radio spreads them.
    this.timers = options.links.map((overhears, i) => new TrickleTimer(options.clock, options.timers.helloMinMs, options.timers.helloMaxMs,
      (next) => options.send(i, [...this.next(i, next, false), ...(options.along?.(i, next) ?? [])]), options.random, overhears ? 0.25 : 0.05));
  }

  start(): void {
    for (const t of this.timers) t.start();
  }

  stop(): void {
    for (const t of this.timers) t.stop();
  }

  /** A new hello on a link, out of turn (answering a route request), with its IHUs. */
  now(linkIndex: number): Tlv[] {
    return this.next(linkIndex, this.timers[linkIndex]!.interval, true);
  }

  /**
   * The next hello on a link now, sent along with other TLVs (a periodic route dump on a
   * wired or IP link), in place of the one its timer would send: a frame saved.
   */
  instead(linkIndex: number): Tlv[] {
    const timer = this.timers[linkIndex]!;
    timer.postpone();
    return this.next(linkIndex, timer.interval, false);
  }

  /**
   * Our last hello on a link again (same seq, so it counts once) with our IHUs: carried by
   * a route request, so that a neighbour that restarted and does not know us yet can answer
   * with an IHU at once instead of after our next hello, minutes away on a radio.
   */
  repeat(linkIndex: number): Tlv[] {
    return [{ t: 'hello', seq: this.seq[linkIndex]!, intervalMs: this.timers[linkIndex]!.interval }, ...this.ihus(linkIndex)];
  }

  private next(linkIndex: number, nextWithinMs: number, withIhus: boolean): Tlv[] {
    this.seq[linkIndex] = (this.seq[linkIndex]! + 1) & 0xffff;
    const hello: Tlv = { t: 'hello', seq: this.seq[linkIndex]!, intervalMs: nextWithinMs };
    const changed = this.neighbours.onLink(linkIndex).some((n) => this.told.get(n.key) !== this.neighbours.rxcost(n));
    if (!withIhus && !changed && ++this.sinceIhu[linkIndex]! < this.perIhu[linkIndex]!) return [hello];
    return [hello, ...this.ihus(linkIndex)];
  }

  private ihus(linkIndex: number): Tlv[] {
    this.sinceIhu[linkIndex] = 0;
    return this.neighbours.onLink(linkIndex).map((n): Tlv => {
      const rxcost = this.neighbours.rxcost(n);
      this.told.set(n.key, rxcost);
      return { t: 'ihu', neighbour: n.id, rxcost };
    });
  }
}
