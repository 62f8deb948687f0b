// Splits a message into fragments that fit the smallest link of the mesh, and puts
// them back together at the destination. Incomplete messages are dropped after a while
// and the number held is bounded, so a flood of first fragments cannot eat memory.
export function split(payload: Uint8Array, fragmentBytes: number): Uint8Array[] {
  const count = Math.max(1, Math.ceil(payload.length / fragmentBytes));
  return Array.from({ length: count }, (_, i) => payload.subarray(i * fragmentBytes, (i + 1) * fragmentBytes));
}

interface Partial { parts: (Uint8Array | undefined)[]; received: number; expires: number }

export class Reassembler {
  private readonly pending = new Map<string, Partial>();
  private readonly maxPending: number;
  private readonly holdMs: number;

  constructor(maxPending = 256, holdMs = 120_000) {
    this.maxPending = maxPending;
    this.holdMs = holdMs;
  }

  /** Adds a fragment; returns the whole message once every fragment is in. */
  add(key: string, index: number, count: number, part: Uint8Array, now: number): Uint8Array | undefined {
    if (count === 1) return part;
    let entry = this.pending.get(key);
    if (!entry || entry.parts.length !== count) {
      this.expire(now);
      if (this.pending.size >= this.maxPending) this.pending.delete(this.pending.keys().next().value!);
      entry = { parts: new Array(count), received: 0, expires: now + this.holdMs };
      this.pending.set(key, entry);
    }
    if (entry.parts[index]) return undefined;
    entry.parts[index] = part;
    entry.received++;
    if (entry.received < count) return undefined;
    this.pending.delete(key);
    const total = entry.parts.reduce((n, p) => n + p!.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const p of entry.parts) {
      out.set(p!, offset);
      offset += p!.length;
    }
    return out;
  }

  private expire(now: number): void {
    for (const [key, entry] of this.pending) if (entry.expires <= now) this.pending.delete(key);
  }
}

/** Remembers recently seen keys, bounded, for duplicate suppression. */
export class RecentSet {
  private readonly seen = new Map<string, number>();
  private readonly max: number;
  private readonly holdMs: number;

  constructor(max = 8192, holdMs = 300_000) {
    this.max = max;
    this.holdMs = holdMs;
  }

  /** True if `key` was seen already; records it otherwise. */
  seenBefore(key: string, now: number): boolean {
    const at = this.seen.get(key);
    if (at !== undefined && at > now - this.holdMs) return true;
    if (this.seen.size >= this.max) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(key, now);
    return false;
  }
}
