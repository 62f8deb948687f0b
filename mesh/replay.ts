// Replay protection in the manner of RFC 8967: each sender numbers its packets
// (epoch, counter); the epoch rises at every start of the box. A receiver accepts a
// counter once, within a 64-packet window for reordering, and never an older epoch.
const WINDOW = 64;

interface SenderState { epoch: number; highest: number; seen: bigint }

export type ReplayVerdict = 'fresh' | 'duplicate' | 'stale';

export class ReplayGuard {
  private readonly senders = new Map<string, SenderState>();
  private readonly maxSenders: number;

  constructor(maxSenders = 4096) {
    this.maxSenders = maxSenders;
  }

  /** Records the packet if it is fresh. `duplicate`: seen already; `stale`: too old to judge. */
  check(sender: string, epoch: number, counter: number): ReplayVerdict {
    const state = this.senders.get(sender);
    if (!state || epoch > state.epoch) {
      if (!state && this.senders.size >= this.maxSenders) this.senders.delete(this.senders.keys().next().value!);
      this.senders.set(sender, { epoch, highest: counter, seen: 1n });
      return 'fresh';
    }
    if (epoch < state.epoch) return 'stale';
    if (counter > state.highest) {
      const shift = counter - state.highest;
      state.seen = shift >= WINDOW ? 1n : ((state.seen << BigInt(shift)) | 1n) & ((1n << BigInt(WINDOW)) - 1n);
      state.highest = counter;
      return 'fresh';
    }
    const age = state.highest - counter;
    if (age >= WINDOW) return 'stale';
    const bit = 1n << BigInt(age);
    if (state.seen & bit) return 'duplicate';
    state.seen |= bit;
    return 'fresh';
  }
}
