// How busy the channel round this box is: the airtime of every frame its radios heard
// (for it or not) over the last half minute, as a share of that time. The data plane
// backs off its retries by it: on a channel already busy near an uplink, a retry sent
// soon mostly meets the same traffic again (and adds to it), so the wait before it grows
// with the load, as 802.11's contention window grows with collisions.
import type { Clock } from '../drivers/clock.ts';
import type { Link } from '../drivers/link.ts';

const WINDOW_MS = 30_000;
/**
 * How much a retry's backoff grows per unit of channel load: at 5 % of the air heard
 * busy the backoff doubles. What a box hears decoded is a fraction of what collides at
 * its next hop (hidden terminals near an uplink), hence the large weight; tuned in the
 * simulator (bench/mesh-sim.ts), where it made the congested seeds deliver without
 * costing the quiet ones.
 */
export const BACKOFF_PER_LOAD = 20;
/** slots of the window: the share is kept per slot, so old frames leave it in steps */
const SLOTS = 6;

export class ChannelLoad {
  private readonly clock: Clock;
  private readonly links: Link[];
  /** per link: airtime heard in each slot, and the slot it was last written in */
  private readonly heard: { ms: number[]; slot: number }[];

  constructor(clock: Clock, links: Link[]) {
    this.clock = clock;
    this.links = links;
    this.heard = links.map(() => ({ ms: new Array<number>(SLOTS).fill(0), slot: 0 }));
  }

  /** A frame of `bytes` heard on a link. */
  frame(linkIndex: number, bytes: number): void {
    const airtime = this.links[linkIndex]!.airtimeMs(bytes);
    if (airtime <= 0) return;
    const h = this.advance(linkIndex);
    h.ms[h.slot % SLOTS]! += airtime;
  }

  /** The share (0..1) of the last half minute the link's channel carried frames this box heard. */
  busy(linkIndex: number): number {
    const h = this.advance(linkIndex);
    return Math.min(1, h.ms.reduce((a, b) => a + b, 0) / WINDOW_MS);
  }

  private advance(linkIndex: number): { ms: number[]; slot: number } {
    const h = this.heard[linkIndex]!;
    const slot = Math.floor(this.clock.now() / (WINDOW_MS / SLOTS));
    for (let s = Math.max(h.slot + 1, slot - SLOTS + 1); s <= slot; s++) h.ms[s % SLOTS] = 0;
    h.slot = Math.max(h.slot, slot);
    return h;
  }
}

/**
 * The wait before try `tries + 1` of a frame of `airtimeMs`: random, in a window that
 * doubles with each try (two senders that collided do not collide again) and grows with
 * the channel's load.
 */
export function retryBackoffMs(random: () => number, airtimeMs: number, tries: number, busy: number): number {
  return random() * airtimeMs * (1 + BACKOFF_PER_LOAD * busy) * 2 ** tries;
}
