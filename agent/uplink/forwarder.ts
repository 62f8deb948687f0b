// Moves signed readings from the journal to the broker, in sequence order, and
// removes them from the journal only when they are acknowledged: by a gateway
// receipt (default) or by the broker's PUBACK (deployments without a gateway).
// Readings published but not receipted in time are published again; the gateway
// drops duplicates.
import { bytesEqual } from '../codec/hex.ts';
import { messageHash } from '../codec/chain.ts';
import type { Journal } from '../store/journal.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';
import type { ReceiptTrust } from './receipt-trust.ts';
import { RateLimitedLog } from './rate-limited-log.ts';

/** Where readings go: an MQTT client, or the mesh toward an uplink box. */
export interface Publisher {
  publish(topic: string, payload: Buffer, options: { qos: 1 }, callback: (error?: Error) => void): unknown;
}

export interface ForwarderOptions {
  journal: Journal;
  dataTopic: string;
  ack: 'gateway' | 'broker';
  /** published and not yet PUBACKed, at most */
  window: number;
  ackTimeoutMs: number;
  trust: ReceiptTrust;
  log: Logger;
}

const PRUNE_EVERY_MS = 200;
const RETRY_AFTER_ERROR_MS = 2000;

export class Forwarder {
  private readonly options: ForwarderOptions;
  private readonly journal: Journal;
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
  private lastProgressMs = Date.now();
  private pumping = false;
  private resendTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private receiptTimeoutMs: number;
  /** when each reading not yet receipted was last published (mesh: a repeated receipt names the lost ones) */
  private readonly publishedAt = new Map<number, number>();
  private gapGraceMs: number | undefined;
  /** counters for status and tests */
  readonly counters = { published: 0, resent: 0, receipts: 0, rejectedReceipts: 0 };

  constructor(options: ForwarderOptions) {
    this.options = options;
    this.journal = options.journal;
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
    this.window = options.window ?? this.options.window;
    this.receiptTimeoutMs = options.receiptTimeoutMs ?? this.options.ackTimeoutMs;
    this.gapGraceMs = options.gapGraceMs;
    this.generation++;
    this.inFlight = 0;
    this.completed.clear();
    this.nextSeq = this.firstUnacked();
    this.pubacked = this.nextSeq - 1;
    this.lastProgressMs = Date.now();
    clearInterval(this.resendTimer);
    if (this.options.ack === 'gateway') {
      this.resendTimer = setInterval(() => this.checkReceipts(), Math.max(50, Math.min(this.receiptTimeoutMs / 4, 60_000)));
    }
    this.pump();
  }

  detach(): void {
    this.client = undefined;
    this.generation++;
    clearInterval(this.resendTimer);
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** A reading was stored. */
  notify(): void {
    this.pump();
  }

  stop(): void {
    this.detach();
    clearTimeout(this.pruneTimer);
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
    if (receipt.seq === this.acked) this.repeatedReceipt();
    if (receipt.seq <= this.acked) return;
    const head = this.journal.head();
    if (!head || receipt.seq > head.seq) {
      this.counters.rejectedReceipts++;
      this.errors.error(`receipt for seq ${receipt.seq} but this box has signed only up to ${head?.seq ?? 'none'}: ignored`);
      return;
    }
    const [stored] = this.journal.batch(receipt.seq, 1);
    if (stored && stored.seq === receipt.seq && !bytesEqual(messageHash(stored.bytes), receipt.hash)) {
      this.counters.rejectedReceipts++;
      this.errors.error(`receipt for seq ${receipt.seq} names another message than this box sent: ignored`);
      return;
    }
    this.advance(receipt.seq);
  }

  private advance(seq: number): void {
    this.acked = seq;
    for (const published of this.publishedAt.keys()) if (published <= seq) this.publishedAt.delete(published);
    this.lastProgressMs = Date.now();
    if (this.nextSeq <= seq) this.nextSeq = seq + 1;
    this.schedulePrune();
    this.pump();
  }

  private schedulePrune(): void {
    if (this.pruneTimer) return;
    this.pruneTimer = setTimeout(() => {
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
   * A publish failed while still attached (through the mesh: dropped before the first hop
   * took it): publish from that reading again after a pause, not at the receipt timeout.
   */
  private retryFrom(seq: number): void {
    if (seq < this.nextSeq) this.nextSeq = Math.max(seq, this.firstUnacked());
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, RETRY_AFTER_ERROR_MS);
    this.retryTimer.unref();
  }

  private repeatedReceipt(): void {
    if (this.gapGraceMs === undefined || !this.client || this.pubacked <= this.acked) return;
    const from = this.firstUnacked();
    const sentAt = this.publishedAt.get(from);
    if (sentAt === undefined || Date.now() - sentAt < this.gapGraceMs || this.nextSeq <= from) return;
    this.options.log.info(`the uplink box lacks seq ${from}: publishing again from there`);
    this.counters.resent += this.pubacked - from + 1;
    this.nextSeq = from;
    this.pump();
  }

  private firstUnacked(): number {
    const oldest = this.journal.oldest();
    return Math.max(this.acked + 1, oldest ?? this.acked + 1);
  }

  private checkReceipts(): void {
    if (!this.client || this.pubacked <= this.acked) {
      this.lastProgressMs = Date.now();
      return;
    }
    if (Date.now() - this.lastProgressMs < this.receiptTimeoutMs) return;
    const from = this.firstUnacked();
    this.options.log.info(`no receipt for seq ${from}..${this.pubacked} within ${this.receiptTimeoutMs} ms: publishing again`);
    this.counters.resent += this.pubacked - from + 1;
    this.lastProgressMs = Date.now();
    this.nextSeq = from;
    this.pump();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
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
    this.publishedAt.set(seq, Date.now());
    if (this.publishedAt.size > this.unreceiptedLimit * 2) this.publishedAt.delete(this.publishedAt.keys().next().value!);
    client.publish(this.options.dataTopic, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { qos: 1 }, (err) => {
      if (generation !== this.generation) return; // a connection that is gone
      this.inFlight--;
      if (err) {
        this.errors.error(`publishing seq ${seq} failed: ${errorMessage(err)}`);
        this.retryFrom(seq);
        return;
      }
      this.onPuback(seq);
      // Refill at half a window: one queue read for many readings, not one per PUBACK.
      if (this.inFlight <= this.window >> 1) this.pump();
    });
  }

  private onPuback(seq: number): void {
    this.completed.add(seq);
    while (this.completed.delete(this.pubacked + 1)) this.pubacked++;
    if (this.completed.size > 0) {
      // Readings dropped from a full queue while in flight leave holes no PUBACK fills.
      const oldest = this.journal.oldest();
      if (oldest !== undefined && oldest > this.pubacked + 1) this.pubacked = oldest - 1;
      while (this.completed.delete(this.pubacked + 1)) this.pubacked++;
    }
    if (this.options.ack === 'broker' && this.pubacked > this.acked) {
      this.acked = this.pubacked;
      this.lastProgressMs = Date.now();
      this.schedulePrune();
    }
  }
}
