// Who this box hears, and how well: hello loss in both directions gives the expected
// transmission count (ETX) of each link, refined by SNR where the radio reports it and
// by what the data plane saw (a neighbour that stops acknowledging is down at once).
import type { Clock, TimerHandle } from '../drivers/clock.ts';
import { INFINITE_METRIC, nodeIdHex, type NodeId } from './packet.ts';

const HISTORY = 8;

export interface Neighbour {
  key: string;
  id: NodeId;
  idHex: string;
  link: number;
  address: string;
  /** receptions of the last HISTORY hellos, newest in bit 0 */
  history: number;
  /** hellos expected since first heard, up to HISTORY: a newcomer is not judged on hellos before it came */
  expected: number;
  lastSeq: number;
  missesInARow: number;
  /** what the neighbour reports of our hellos (its rxcost of us); INFINITE until heard */
  txcost: number;
  txcostExpires: number;
  deadline: TimerHandle | undefined;
  intervalMs: number;
  rssi?: number | undefined;
  snr?: number | undefined;
  /** data frames the neighbour failed to acknowledge since its last hello */
  dataFailures: number;
  /** until when the data plane holds the link down or penalised (then hellos judge it again) */
  dataDownUntil: number;
  /** down (a wired or IP link) rather than penalised (a radio) */
  dataDown: boolean;
  lastHeard: number;
  /** how long the neighbour's last IHU stays valid: acknowledged data renews it for as long */
  txcostValidMs: number;
  /** the epoch the neighbour's hellos came with: a new one means it restarted */
  epoch: number;
  /** when data to it first failed since it was last heard from (radio) */
  failedSilentSince?: number | undefined;
  /** taken as gone because it answered no probe (radio): any frame from it brings it back */
  goneUnheard?: boolean;
}

export interface NeighbourEvents {
  /** cost to some neighbour changed (or one appeared or went) */
  changed(neighbour: Neighbour, appeared: boolean): void;
  /** ask a silent neighbour on a wired or IP link to answer now (a unicast request) */
  probe?(neighbour: Neighbour): void;
  /**
   * ask a silent radio neighbour that stopped acknowledging data to answer now (a unicast
   * request, rate-limited by the router); false if no request went
   */
  probeSilent?(neighbour: Neighbour): boolean;
}

export class NeighbourTable {
  private readonly clock: Clock;
  private readonly events: NeighbourEvents;
  private readonly byKey = new Map<string, Neighbour>();

  /** how late a hello may be before it counts as missed, per link (queues, listen-before-talk) */
  private readonly slackMs: (link: number) => number;

  /** hellos missed in a row after which a neighbour is taken as gone (fast on wires, patient on radio) */
  private readonly downAfterMisses: number;

  /**
   * How long a silent neighbour has to answer a probe, per link; undefined where no probe
   * is sent (radio links: there a late hello is far more often a collision, and a probe
   * would add to the channel's load).
   */
  private readonly probeMs: (link: number) => number | undefined;

  /**
   * How long a radio neighbour that stopped acknowledging data, and was heard from no
   * more than that long ago, has to answer a probe before it counts as gone; undefined:
   * no such probes.
   */
  private readonly silentProbeMs: (link: number) => number | undefined;

  constructor(clock: Clock, events: NeighbourEvents, options: {
    slackMs?: (link: number) => number; downAfterMisses?: number; probeMs?: (link: number) => number | undefined; silentProbeMs?: (link: number) => number | undefined;
  } = {}) {
    this.clock = clock;
    this.events = events;
    this.slackMs = options.slackMs ?? (() => 100);
    this.downAfterMisses = options.downAfterMisses ?? 2;
    this.probeMs = options.probeMs ?? (() => undefined);
    this.silentProbeMs = options.silentProbeMs ?? (() => undefined);
  }

  all(): Neighbour[] {
    return [...this.byKey.values()];
  }

  onLink(link: number): Neighbour[] {
    return this.all().filter((n) => n.link === link);
  }

  get(key: string): Neighbour | undefined {
    return this.byKey.get(key);
  }

  /** A hello from `id` at `address` on `link`, in a packet of `epoch`. */
  hello(link: number, address: string, id: NodeId, seq: number, intervalMs: number, signal: { rssi?: number | undefined; snr?: number | undefined }, epoch = 0): Neighbour {
    const key = `${link}/${address}`;
    let n = this.byKey.get(key);
    let appeared = !n;
    if (!n) {
      n = { key, id, idHex: nodeIdHex(id), link, address, history: 0, expected: 0, lastSeq: (seq - 1) & 0xffff, missesInARow: 0, txcost: INFINITE_METRIC, txcostExpires: 0, txcostValidMs: 0, deadline: undefined, intervalMs, dataFailures: 0, dataDownUntil: 0, dataDown: false, lastHeard: 0, epoch };
      this.byKey.set(key, n);
    } else if (epoch !== n.epoch) {
      // The neighbour restarted: its hello seq starts anew, so its history starts anew
      // (not as hellos missed), and it is greeted as a newcomer so that it learns our
      // routes and IHUs at once. The link itself is what it was: its txcost stands.
      Object.assign(n, { history: 0, expected: 0, lastSeq: (seq - 1) & 0xffff, missesInARow: 0, dataFailures: 0, dataDownUntil: 0, epoch });
      appeared = true;
    }
    const before = this.cost(n);
    if (!appeared && seq === n.lastSeq) {
      // A hello repeated in a probe: the neighbour is there, but it is not a new sample.
      n.lastHeard = this.clock.now();
      return n;
    }
    const gap = Math.min(HISTORY, Math.max(1, (seq - n.lastSeq) & 0xffff));
    // Hellos already counted as missed by the deadline are not counted twice.
    const unseen = Math.max(0, gap - 1 - n.missesInARow);
    n.history = (((n.history << unseen) << 1) | 1) & ((1 << HISTORY) - 1);
    n.expected = Math.min(HISTORY, n.expected + unseen + 1);
    n.lastSeq = seq;
    n.missesInARow = 0;
    n.dataFailures = 0;
    n.intervalMs = intervalMs;
    n.rssi = signal.rssi;
    n.snr = signal.snr;
    n.lastHeard = this.clock.now();
    this.armDeadline(n);
    n.goneUnheard = false;
    if (appeared || this.cost(n) !== before) this.events.changed(n, appeared);
    return n;
  }

  /** The neighbour's I-heard-you about us. */
  ihu(key: string, rxcost: number, validMs: number): void {
    const n = this.byKey.get(key);
    if (!n) return;
    const before = this.cost(n);
    n.txcost = rxcost;
    n.txcostValidMs = validMs;
    n.txcostExpires = this.clock.now() + validMs;
    if (this.cost(n) !== before) this.events.changed(n, false);
  }

  /**
   * Data-plane feedback: frames sent to the neighbour went unacknowledged. The link is
   * down for `holdMs` (or until the neighbour is heard), not until its next hello,
   * which on a radio can be minutes away: a burst of collisions is not a dead link.
   */
  dataFailed(key: string, holdMs: number, down: boolean): void {
    const n = this.byKey.get(key);
    if (!n) return;
    const before = this.cost(n);
    n.dataFailures++;
    n.dataDown = down;
    n.dataDownUntil = this.clock.now() + holdMs;
    this.clock.setTimeout(() => {
      if (this.byKey.get(key) === n && n.dataFailures > 0 && this.clock.now() >= n.dataDownUntil) {
        n.dataFailures = 0;
        this.events.changed(n, false);
      }
    }, holdMs);
    if (this.cost(n) !== before) this.events.changed(n, false);
    if (!down) this.askIfSilent(n);
  }

  /**
   * A radio neighbour left every try of two data frames unanswered, the second a while
   * after the first, and nothing at all came from it in between: with hellos minutes
   * apart, waiting for them to be missed would keep routes through a gone box for many
   * minutes. It is asked once (a probe); if nothing comes from it in time, it counts as
   * gone (its rxcost infinite) until its next hello. A neighbour heard in between (its
   * acks collided, its radio did not die) is not asked.
   */
  private askIfSilent(n: Neighbour): void {
    const waitMs = this.silentProbeMs(n.link);
    const asked = this.clock.now();
    if (waitMs === undefined) return;
    if (n.failedSilentSince === undefined || n.lastHeard >= n.failedSilentSince) {
      n.failedSilentSince = asked;
      return;
    }
    if (asked - n.failedSilentSince < waitMs || !this.events.probeSilent?.(n)) return;
    this.clock.setTimeout(() => {
      if (this.byKey.get(n.key) !== n || n.lastHeard >= asked) return;
      const before = this.cost(n);
      n.missesInARow = Math.max(n.missesInARow, this.downAfterMisses);
      n.goneUnheard = true;
      if (this.cost(n) !== before) this.events.changed(n, false);
    }, waitMs);
  }

  /**
   * Any frame from the neighbour (data, ack, a relay overheard, control without a hello):
   * it is there. On a busy radio a hello is lost to a collision far more often than the
   * neighbour is gone, so missed hellos while other frames come lower the link's ETX but
   * do not take it down (section 4).
   */
  heard(key: string): void {
    const n = this.byKey.get(key);
    if (!n) return;
    n.lastHeard = this.clock.now();
    if (!n.goneUnheard) return;
    // Taken as gone for want of an answer, it is there after all: as it was before.
    n.goneUnheard = false;
    const before = this.cost(n);
    n.missesInARow = 0;
    if (this.cost(n) !== before) this.events.changed(n, false);
  }

  dataDelivered(key: string): void {
    const n = this.byKey.get(key);
    // The neighbour acknowledged our frame: it hears us, whatever became of its last IHU.
    if (n && n.txcost < INFINITE_METRIC && n.txcostValidMs > 0) n.txcostExpires = Math.max(n.txcostExpires, this.clock.now() + n.txcostValidMs);
    if (n && n.dataFailures > 0) {
      const before = this.cost(n);
      n.dataFailures = 0;
      if (this.cost(n) !== before) this.events.changed(n, false);
    }
  }

  /** A radio neighbour that stopped acknowledging data a short while ago: the data plane prefers another way. */
  failing(n: Neighbour): boolean {
    return n.dataFailures > 0 && this.clock.now() < n.dataDownUntil;
  }

  /** What we tell the neighbour in our IHU: 256 / (share of its hellos we received). */
  rxcost(n: Neighbour): number {
    if (n.missesInARow >= this.downAfterMisses) return INFINITE_METRIC;
    const received = popcount(n.history);
    if (received === 0) return INFINITE_METRIC;
    return Math.min(INFINITE_METRIC - 1, Math.round((256 * n.expected) / received));
  }

  /** ETX of the link in 1/256 units, with SNR and data-plane penalties; INFINITE if unusable. */
  cost(n: Neighbour): number {
    const rx = this.rxcost(n);
    const tx = this.clock.now() <= n.txcostExpires ? n.txcost : INFINITE_METRIC;
    if (rx >= INFINITE_METRIC || tx >= INFINITE_METRIC) return INFINITE_METRIC;
    let cost = Math.round((rx * tx) / 256);
    // On a wired or IP link, unanswered tries mean the link is gone. On a radio they more
    // often mean collisions, and the metric stays as hellos measure it: a penalty would be
    // announced, push the routes of every box downstream above their feasibility distance
    // and set off seqno requests across the mesh (more traffic, more collisions). The
    // data plane steers round a failing radio neighbour by itself (failing()).
    if (n.dataFailures > 0 && n.dataDown) return INFINITE_METRIC;
    // Below 0 dB SNR a LoRa link works but is one fade from failing: prefer others.
    if (n.snr !== undefined && n.snr < 0) cost = Math.round(cost * (1 + -n.snr / 10));
    return Math.min(INFINITE_METRIC - 1, cost);
  }

  remove(n: Neighbour): void {
    this.clock.clearTimeout(n.deadline);
    this.byKey.delete(n.key);
    this.events.changed(n, false);
  }

  stop(): void {
    for (const n of this.byKey.values()) this.clock.clearTimeout(n.deadline);
  }

  private armDeadline(n: Neighbour): void {
    this.clock.clearTimeout(n.deadline);
    // The next hello is due within the advertised interval; a little slack for jitter and
    // queues (a radio's listen-before-talk can hold a frame back; a wire's cannot).
    const late = this.probeMs(n.link) === undefined ? 1.15 : 1;
    n.deadline = this.clock.setTimeout(() => this.missed(n), n.intervalMs * late + this.slackMs(n.link));
  }

  private missed(n: Neighbour): void {
    const now = this.clock.now();
    // Heard in the meantime (the hello collided, other frames came): a sample lost, not a link.
    const silent = now - n.lastHeard >= n.intervalMs;
    const probeMs = silent && n.missesInARow < this.downAfterMisses ? this.probeMs(n.link) : undefined;
    if (probeMs !== undefined && this.events.probe) {
      // A wired or IP link loses a frame seldom: a late hello more likely means the
      // neighbour is gone. Ask it directly rather than wait for more hellos; the link is
      // down unless something comes from it within a round trip (section 4).
      this.events.probe(n);
      n.deadline = this.clock.setTimeout(() => this.countMiss(n, n.lastHeard < now ? this.downAfterMisses : 0), probeMs);
      return;
    }
    this.countMiss(n, silent ? 1 : 0);
  }

  /** A hello counted as missed; `misses` added to the row of silent ones. */
  private countMiss(n: Neighbour, misses: number): void {
    const before = this.cost(n);
    n.missesInARow += misses;
    n.history = (n.history << 1) & ((1 << HISTORY) - 1);
    n.expected = Math.min(HISTORY, n.expected + 1);
    if (n.history === 0 && n.missesInARow > HISTORY) {
      this.remove(n);
      return;
    }
    n.deadline = this.clock.setTimeout(() => this.missed(n), n.intervalMs);
    if (this.cost(n) !== before) this.events.changed(n, false);
  }
}

function popcount(x: number): number {
  let c = 0;
  for (; x; x &= x - 1) c++;
  return c;
}
