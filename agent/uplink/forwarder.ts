// Moves signed readings from the journal to the broker, in sequence order, and
// removes them from the journal only when they are acknowledged: by a gateway
// receipt (default), each reading exactly as the receipt covers it, or by the broker's
// PUBACK (deployments without a gateway). Readings published but not receipted in time
// are published again; the gateway drops duplicates.
import { realClock, type Clock, type TimerHandle } from '../../drivers/clock.ts';
import type { ReadingQueue } from '../store/reading-queue.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';
import type { ReceiptTrust } from './receipt-trust.ts';
import { RateLimitedLog } from './rate-limited-log.ts';
import { coveredRanges } from './receipt-runs.ts';

/** Where readings go: an MQTT client, or the mesh toward an uplink box. */
export interface Publisher {
  publish(topic: string, payload: Buffer, options: { qos: 1 }, callback: (error?: Error) => void): unknown;
}

export interface ForwarderOptions {
  /** the box's journal (or, in the simulator, an in-memory queue that behaves alike) */
  journal: ReadingQueue;
  dataTopic: string;
  ack: 'gateway' | 'broker';
  /** published and not yet PUBACKed, at most */
  window: number;
  ackTimeoutMs: number;
  trust: ReceiptTrust;
  log: Logger;
  /** virtual time in the simulator; the real clock on a box */
  clock?: Clock;
}

const PRUNE_EVERY_MS = 200;
const RETRY_AFTER_ERROR_MS = 2000;
/** the longest pause after publishes that keep failing (a congested or broken mesh path) */
const RETRY_AFTER_ERRORS_MAX_MS = 64_000;

export class Forwarder {
  private readonly options: ForwarderOptions;
  private readonly journal: ReadingQueue;
  private readonly clock: Clock;
  private readonly errors: RateLimitedLog;
  /** published and not yet receipted, at most (gateway mode): receipts pace the flow */
  private readonly unreceiptedLimit: number;
  private client: Publisher | undefined;
  private window: number;
  private generation = 0;
  private nextSeq = 0;
  private inFlight = 0;
  private acked: number;
  private pubacked: number;
  private readonly completed = new Set<number>();
  private lastProgressMs: number;
  private pumping = false;
  private resendTimer: TimerHandle | undefined;
  private pruneTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  /** readings whose publish failed: published again (alone) when the retry pause is over */
  private readonly failed = new Set<number>();
  /** publishes failed in a row: each doubles the pause before trying again */
  private failuresInRow = 0;
  /** receipt waits in a row that ran out without progress: each doubles the next wait (up to 4 times) */
  private timeoutsInRow = 0;
  private receiptTimeoutMs: number;
  /** when each reading not yet receipted was last published (mesh: a repeated receipt names the lost ones) */
  private readonly publishedAt = new Map<number, number>();
  private gapGraceMs: number | undefined;
  /**
   * counters for status, metrics and tests; resent = resentTimeout + resentGap (why readings
   * went again); receipted: readings freed by a receipt (ack: broker: by PUBACKs)
   */
  readonly counters = { published: 0, resent: 0, resentTimeout: 0, resentGap: 0, publishFailed: 0, attaches: 0, receipts: 0, rejectedReceipts: 0, receipted: 0 };
  /** told of every reading published again and why (the simulator counts those the gateway held already) */
  onResend: ((seq: number, cause: 'timeout' | 'gap') => void) | undefined;

  constructor(options: ForwarderOptions) {
    this.options = options;
    this.journal = options.journal;
    this.clock = options.clock ?? realClock;
    this.lastProgressMs = this.clock.now();
    this.errors = new RateLimitedLog(options.log);
    this.unreceiptedLimit = Math.max(options.window * 16, 256);
    this.window = options.window;
    this.receiptTimeoutMs = options.ackTimeoutMs;
    this.acked = this.journal.acked();
    this.pubacked = this.acked;
  }

  /**
   * A connection is up: start from the oldest reading not yet acknowledged. Through the
   * mesh, receipts are held by the uplink box (a longer `receiptTimeoutMs`), and the same
   * receipt twice says the readings after it that were sent `gapGraceMs` ago were lost.
   */
  attach(client: Publisher, options: { window?: number; receiptTimeoutMs?: number; gapGraceMs?: number } = {}): void {
    this.client = client;
    this.counters.attaches++;
    this.window = options.window ?? this.options.window;
    this.receiptTimeoutMs = options.receiptTimeoutMs ?? this.options.ackTimeoutMs;
    this.gapGraceMs = options.gapGraceMs;
    this.generation++;
    this.inFlight = 0;
    this.completed.clear();
    this.failed.clear();
    this.failuresInRow = 0;
    this.nextSeq = this.firstUnacked();
    this.pubacked = this.nextSeq - 1;
    this.lastProgressMs = this.clock.now();
    this.clock.clearTimeout(this.resendTimer);
    this.resendTimer = undefined;
    if (this.options.ack === 'gateway') this.checkReceiptsEvery(Math.max(50, Math.min(this.receiptTimeoutMs / 4, 60_000)));
    this.pump();
  }

  /** The Clock has no interval: the check re-arms itself, for this attachment only. */
  private checkReceiptsEvery(ms: number): void {
    const generation = this.generation;
    this.resendTimer = this.clock.setTimeout(() => {
      if (generation !== this.generation) return;
      this.checkReceipts();
      this.checkReceiptsEvery(ms);
    }, ms);
  }

  detach(): void {
    this.client = undefined;
    this.generation++;
    this.clock.clearTimeout(this.resendTimer);
    this.resendTimer = undefined;
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** A reading was stored. */
  notify(): void {
    this.pump();
  }

  /** The way out works again (through the mesh: a route to an uplink box came): failed publishes go now. */
  retryNow(): void {
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.failuresInRow = 0;
    this.pump();
  }

  stop(): void {
    this.detach();
    this.clock.clearTimeout(this.pruneTimer);
    this.pruneTimer = undefined;
    this.prune();
  }

  /** The publisher readings go to now, if any. */
  get attached(): Publisher | undefined {
    return this.client;
  }

  /** Whose receipts count, and how many were refused and why. */
  get trust(): ReceiptTrust {
    return this.options.trust;
  }

  get ackedSeq(): number {
    return this.acked;
  }

  onReceipt(bytes: Uint8Array): void {
    const check = this.options.trust.check(bytes);
    if (!check.ok) {
      this.counters.rejectedReceipts++;
      this.errors.error(check.reason);
      return;
    }
    const { receipt } = check;
    this.counters.receipts++;
    const head = this.journal.head();
    if (!head || receipt.highest > head.seq) {
      this.counters.rejectedReceipts++;
      this.errors.error(`receipt for seq ${receipt.highest} but this box has signed only up to ${head?.seq ?? 'none'}: ignored`);
      return;
    }
    const runs = coveredRanges(receipt, head, this.journal);
    for (const why of runs.kept) this.errors.error(why);
    if ('rejected' in runs) {
      this.counters.rejectedReceipts++;
      this.errors.error(runs.rejected);
      return;
    }
    const { covered } = runs;
    let freed = 0;
    try {
      freed = covered.length ? this.journal.removeRanges(covered) : 0;
      this.counters.receipted += freed;
    } catch (err) {
      this.errors.error(errorMessage(err));
      return;
    }
    for (const published of this.publishedAt.keys()) if (covered.some((r) => r.first <= published && published <= r.last)) this.publishedAt.delete(published);
    const acked = this.journal.acked();
    if (acked > this.acked) {
      this.acked = acked;
      this.timeoutsInRow = 0;
      this.lastProgressMs = this.clock.now();
    }
    // Through the mesh, a receipt covering readings after one still held says the uplink
    // box lacks that one. The same receipt again does not: on a radio mesh it is mostly
    // the answer to a resend or a copy of a lost one, and taking it for a gap sent the
    // oldest readings again and again (50 boxes: a third of all transmissions).
    if (receipt.highest > this.firstUnacked()) this.repeatedReceipt(receipt.highest);
    this.pump();
  }

  private schedulePrune(): void {
    if (this.pruneTimer) return;
    this.pruneTimer = this.clock.setTimeout(() => {
      this.pruneTimer = undefined;
      this.prune();
    }, PRUNE_EVERY_MS);
  }

  private prune(): void {
    try {
      this.journal.removeThrough(this.acked);
    } catch (err) {
      this.errors.error(errorMessage(err));
    }
  }

  /**
   * A publish failed while still attached (through the mesh: no route to an uplink box, or
   * dropped on the way after every try): publish that reading again after a pause, not at
   * the receipt timeout. Only that reading: the ones published after it may well have gone
   * through. The pause doubles while publishes keep failing, so that a congested radio
   * channel is not given the same readings again every few seconds.
   */
  private retryAfterError(seq: number): void {
    this.failed.add(seq);
    if (this.retryTimer) return;
    const pause = Math.min(RETRY_AFTER_ERROR_MS * 2 ** this.failuresInRow, RETRY_AFTER_ERRORS_MAX_MS);
    this.failuresInRow++;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, pause);
  }

  /** Publishes the readings whose publish failed, oldest first, while the window has room. */
  private publishFailed(client: Publisher): void {
    const oldest = this.firstUnacked();
    for (const seq of [...this.failed].sort((a, b) => a - b)) {
      if (this.inFlight >= this.window) return;
      this.failed.delete(seq);
      const message = seq >= oldest ? this.journal.get(seq) : undefined;
      if (message) this.publish(client, seq, message.bytes);
    }
  }

  /**
   * A receipt covers `highest` but not the oldest reading still held: the readings below
   * `highest` it left out are missing at the gateway. Those go again, each only once it was
   * published `gapGraceMs` ago (its copy may still be on its way); not the ones above
   * `highest`, which may well be on their way too.
   */
  private repeatedReceipt(highest: number): void {
    if (this.gapGraceMs === undefined || !this.client || this.pubacked <= this.acked) return;
    const from = this.firstUnacked();
    if (this.nextSeq <= from) return;
    const now = this.clock.now();
    const missing: number[] = [];
    for (let seq = this.journal.firstFrom(from); seq !== undefined && seq < highest && missing.length < this.window; seq = this.journal.firstFrom(seq + 1)) {
      const sentAt = this.publishedAt.get(seq);
      if (sentAt !== undefined && now - sentAt >= this.gapGraceMs) missing.push(seq);
    }
    if (!missing.length) return;
    this.options.log.info(`the uplink box lacks seq ${missing.join(', ')}: publishing ${missing.length === 1 ? 'it' : 'them'} again`);
    this.counters.resent += missing.length;
    this.counters.resentGap += missing.length;
    for (const seq of missing) {
      this.failed.add(seq);
      this.onResend?.(seq, 'gap');
    }
    this.retryNow();
  }

  /**
   * Publishes the oldest unreceipted readings again, a window of them, not the whole
   * backlog: their answer (a duplicate gets a receipt at once) says what the gateway holds,
   * and a lost receipt, the common case on a radio mesh, then costs a few readings' airtime.
   */
  private resendOldest(from: number): void {
    const last = Math.min(this.pubacked, from + this.window - 1);
    this.options.log.info(`no receipt for seq ${from}..${this.pubacked} within ${this.receiptTimeoutMs} ms: publishing ${from}..${last} again`);
    this.counters.resent += last - from + 1;
    this.counters.resentTimeout += last - from + 1;
    for (let seq = from; seq <= last; seq++) {
      this.failed.add(seq);
      this.onResend?.(seq, 'timeout');
    }
    this.retryNow();
  }

  private firstUnacked(): number {
    const oldest = this.journal.oldest();
    return Math.max(this.acked + 1, oldest ?? this.acked + 1);
  }

  private checkReceipts(): void {
    if (!this.client || this.pubacked <= this.acked) {
      this.lastProgressMs = this.clock.now();
      return;
    }
    // The wait runs from the last progress, or from when a reading began to wait after a
    // spell with none waiting (onPuback). Not from the oldest reading's last publish: that
    // restarted the wait at every publish again (after a failed one, a gap), delaying
    // most the readings the mesh had trouble with.
    if (this.clock.now() - this.lastProgressMs < this.receiptTimeoutMs * 2 ** Math.min(this.timeoutsInRow, 2)) return;
    const from = this.firstUnacked();
    this.timeoutsInRow++;
    this.lastProgressMs = this.clock.now();
    this.resendOldest(from);
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      if (this.client && this.failed.size && !this.retryTimer) this.publishFailed(this.client);
      while (this.client && this.inFlight < this.window) {
        const room = this.window - this.inFlight;
        const from = Math.max(this.nextSeq, this.firstUnacked());
        // Receipts pace the flow: no more than unreceiptedLimit beyond the oldest unacknowledged.
        const limit = this.options.ack === 'gateway' ? Math.min(room, this.firstUnacked() + this.unreceiptedLimit - from) : room;
        if (limit <= 0) break;
        const batch = this.journal.batch(from, limit);
        if (batch.length === 0) break;
        for (const message of batch) this.publish(this.client, message.seq, message.bytes);
        this.nextSeq = batch[batch.length - 1]!.seq + 1;
      }
    } catch (err) {
      this.errors.error(`reading the queue failed: ${errorMessage(err)}`);
    } finally {
      this.pumping = false;
    }
  }

  private publish(client: Publisher, seq: number, bytes: Uint8Array): void {
    const generation = this.generation;
    this.inFlight++;
    this.counters.published++;
    this.publishedAt.set(seq, this.clock.now());
    if (this.publishedAt.size > this.unreceiptedLimit * 2) this.publishedAt.delete(this.publishedAt.keys().next().value!);
    client.publish(this.options.dataTopic, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { qos: 1 }, (err) => {
      if (generation !== this.generation) return; // a connection that is gone
      this.inFlight--;
      if (err) {
        this.counters.publishFailed++;
        this.errors.error(`publishing seq ${seq} failed: ${errorMessage(err)}`);
        this.retryAfterError(seq);
        return;
      }
      this.failuresInRow = 0;
      this.onPuback(seq);
      // Refill at half a window: one queue read for many readings, not one per PUBACK.
      if (this.inFlight <= this.window >> 1) this.pump();
    });
  }

  private onPuback(seq: number): void {
    const noneWaited = this.pubacked <= this.acked;
    if (seq > this.pubacked) this.completed.add(seq);
    for (;;) {
      while (this.completed.delete(this.pubacked + 1)) this.pubacked++;
      if (this.completed.size === 0) break;
      // Holes no PUBACK fills: readings dropped from a full queue, or freed by a receipt,
      // before this connection published them.
      const held = this.journal.firstFrom(this.pubacked + 1);
      const upTo = held !== undefined ? held - 1 : Math.max(...this.completed);
      if (upTo <= this.pubacked) break;
      this.pubacked = upTo;
      for (const done of this.completed) if (done <= upTo) this.completed.delete(done);
    }
    if (noneWaited && this.pubacked > this.acked) this.lastProgressMs = this.clock.now();
    if (this.options.ack === 'broker' && this.pubacked > this.acked) {
      this.counters.receipted += this.pubacked - this.acked;
      this.acked = this.pubacked;
      this.lastProgressMs = this.clock.now();
      this.schedulePrune();
    }
  }
}
