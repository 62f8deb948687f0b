// What the forwarder needs of the journal: the queue of signed readings waiting for a
// receipt. The Journal (SQLite, journal.ts) is the one a box uses; MemoryQueue is the
// simulator's, so that a thousand simulated boxes run the shipped forwarder without a
// thousand databases. test/reading-queue.test.ts runs one behaviour against both.
import type { ChainLink } from '../codec/chain.ts';

export interface StoredMessage {
  seq: number;
  bytes: Uint8Array;
}

export interface ReadingQueue {
  /** The last message's sequence number and hash, or undefined before the first. */
  head(): ChainLink | undefined;
  /** Up to `limit` stored messages from `fromSeq` on, in order. */
  batch(fromSeq: number, limit: number): StoredMessage[];
  /** Lowest stored seq, if any. */
  oldest(): number | undefined;
  /** Highest seq a receipt covered (-1 before the first). */
  acked(): number;
  /** Removes every message up to and including `seq`: the broker acknowledged them. */
  removeThrough(seq: number): void;
  /**
   * Removes exactly the messages in these ranges (a receipt covered them, checked by the
   * caller) and returns how many were stored; `acked` rises to just below the oldest
   * message still held.
   */
  removeRanges(ranges: readonly { first: number; last: number }[]): number;
  /** The lowest stored seq from `seq` on, if any (the queue may have holes). */
  firstFrom(seq: number): number | undefined;
  /** The message stored at `seq`, if any. */
  get(seq: number): StoredMessage | undefined;
}

/**
 * The queue in memory, for the simulator: messages signed elsewhere are added in chain
 * order; past `maxMessages` the oldest go, as in the Journal. A Map in seq order, so that
 * removing from the middle (a receipt for some readings only) leaves no other work.
 */
export class MemoryQueue implements ReadingQueue {
  private readonly messages = new Map<number, Uint8Array>();
  private readonly maxMessages: number;
  private last: ChainLink | undefined;
  private ackedSeq = -1;
  /** messages removed unacknowledged because the queue was full */
  dropped = 0;

  constructor(options: { maxMessages?: number } = {}) {
    this.maxMessages = options.maxMessages ?? Number.MAX_SAFE_INTEGER;
  }

  /** Stores the next message of the chain (its seq follows the head's). */
  add(message: StoredMessage & { hash: Uint8Array }): void {
    const expected = this.last ? this.last.seq + 1 : 0;
    if (message.seq !== expected) throw new Error(`seq ${message.seq} does not follow the head (expected ${expected})`);
    this.messages.set(message.seq, message.bytes);
    this.last = { seq: message.seq, hash: message.hash };
    for (const seq of this.messages.keys()) {
      if (this.messages.size <= this.maxMessages) break;
      this.messages.delete(seq);
      this.dropped++;
    }
  }

  head(): ChainLink | undefined {
    return this.last;
  }

  batch(fromSeq: number, limit: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    const oldest = this.oldest();
    if (oldest === undefined) return out;
    for (let seq = Math.max(fromSeq, oldest); out.length < limit && seq <= this.last!.seq; seq++) {
      const bytes = this.messages.get(seq);
      if (bytes) out.push({ seq, bytes });
    }
    return out;
  }

  oldest(): number | undefined {
    return this.messages.keys().next().value;
  }

  acked(): number {
    return this.ackedSeq;
  }

  count(): number {
    return this.messages.size;
  }

  removeRanges(ranges: readonly { first: number; last: number }[]): number {
    let removed = 0;
    for (const r of ranges) {
      // Walk the smaller of the range and the queue.
      if (r.last - r.first < this.messages.size) {
        for (let seq = r.first; seq <= r.last; seq++) if (this.messages.delete(seq)) removed++;
      } else {
        for (const seq of [...this.messages.keys()]) if (seq >= r.first && seq <= r.last && this.messages.delete(seq)) removed++;
      }
    }
    if (removed === 0) return 0;
    const below = this.oldest() ?? (this.last?.seq ?? -1) + 1;
    if (below - 1 > this.ackedSeq) this.ackedSeq = below - 1;
    return removed;
  }

  firstFrom(seq: number): number | undefined {
    if (this.messages.has(seq)) return seq;
    // Keys are in seq order: the first at or above `seq` is the lowest.
    for (const stored of this.messages.keys()) if (stored >= seq) return stored;
    return undefined;
  }

  get(seq: number): StoredMessage | undefined {
    const bytes = this.messages.get(seq);
    return bytes ? { seq, bytes } : undefined;
  }

  removeThrough(seq: number): void {
    if (seq <= this.ackedSeq) return;
    for (const stored of this.messages.keys()) {
      if (stored > seq) break;
      this.messages.delete(stored);
    }
    this.ackedSeq = seq;
  }
}
