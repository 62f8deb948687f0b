// Relaying credited from evidence (docs/rewards.md, section 4). On the uplink box,
// RelayBatcher keeps per-origin counts of the readings it carried and closes them into
// relay attestations; at the gateway, RelayLedger credits an attested reading only when
// its hash matches the reading the gateway holds from that origin at that seq.
import { bytesEqual, toHex } from '../codec/hex.ts';
import { identityFromKid } from '../codec/identity.ts';
import { openContribution, relayHash, RELAY_HASH_BYTES, type RelayAttestation } from './messages.ts';

/** Readings carried, per origin kid, until the next attestation. */
export class RelayBatcher {
  private readonly origins = new Map<string, { kid: Uint8Array; seqs: Map<number, Uint8Array> }>();
  /** readings carried per origin device id since the start */
  readonly carried = new Map<string, number>();
  private readonly maxPerBatch: number;

  constructor(maxPerBatch = 256) {
    this.maxPerBatch = maxPerBatch;
  }

  /** The box relayed reading `seq` of `originKid`, whose SHA-256 is `hash`. */
  add(originKid: Uint8Array, seq: number, hash: Uint8Array): void {
    const key = toHex(originKid);
    let origin = this.origins.get(key);
    if (!origin) this.origins.set(key, origin = { kid: originKid, seqs: new Map() });
    if (origin.seqs.has(seq)) return;
    origin.seqs.set(seq, relayHash(hash).slice());
    const id = identityFromKid(originKid).id;
    this.carried.set(id, (this.carried.get(id) ?? 0) + 1);
  }

  /** Closes every origin's readings into attestations (at most `maxPerBatch` seqs each) and starts again. */
  flush(timeS: number): RelayAttestation[] {
    const out: RelayAttestation[] = [];
    for (const { kid, seqs } of this.origins.values()) {
      const sorted = [...seqs.keys()].sort((a, b) => a - b);
      let i = 0;
      while (i < sorted.length) {
        const first = sorted[i]!;
        const hashes: Uint8Array[] = [];
        while (i < sorted.length && sorted[i]! - first < this.maxPerBatch) {
          const seq = sorted[i]!;
          while (first + hashes.length < seq) hashes.push(new Uint8Array(0));
          hashes.push(seqs.get(seq)!);
          i++;
        }
        out.push({ origin: kid, firstSeq: first, hashes, time: timeS });
      }
    }
    this.origins.clear();
    return out;
  }
}

export interface RelayCredit {
  /** readings the device's attestations named */
  claimed: number;
  /** of those, readings whose hash matched the gateway's (shared among the relays that matched) */
  credited: number;
}

export type RelayRefusal = 'malformed' | 'bad-signature' | 'old-epoch' | 'future' | 'self';

/**
 * The gateway's relay credit for one epoch. `readingHash(origin, seq)` gives the SHA-256
 * of the reading the gateway holds, undefined when it holds none.
 */
export class RelayLedger {
  private readonly startS: number;
  private readonly endS: number;
  private readonly readingHash: (origin: string, seq: number) => Uint8Array | undefined;
  /** `${origin}/${seq}` -> relays that carried it with a matching hash */
  private readonly carriers = new Map<string, Set<string>>();
  private readonly claims = new Map<string, Set<string>>();
  readonly refused: Record<RelayRefusal, number> = { malformed: 0, 'bad-signature': 0, 'old-epoch': 0, future: 0, self: 0 };
  /** named readings whose hash did not match or that the gateway does not hold */
  unmatched = 0;

  constructor(options: { startS: number; endS: number; graceS?: number; readingHash: (origin: string, seq: number) => Uint8Array | undefined }) {
    this.startS = options.startS;
    this.endS = options.endS + (options.graceS ?? 3600);
    this.readingHash = options.readingHash;
  }

  add(bytes: Uint8Array): { ok: true; matched: number; claimed: number } | { ok: false; reason: RelayRefusal; detail: string } {
    let opened;
    try {
      opened = openContribution(bytes);
    } catch (err) {
      return this.refuse('malformed', (err as Error).message);
    }
    if (opened.message.kind !== 'relay') return this.refuse('malformed', `a ${opened.message.kind}, not a relay attestation`);
    if (!opened.valid) return this.refuse('bad-signature', `signature of ${opened.signer.id} does not verify`);
    return this.addAttestation(opened.signer.id, opened.message.body);
  }

  /** An attestation whose signature by `relay` was checked. */
  addAttestation(relay: string, body: RelayAttestation): { ok: true; matched: number; claimed: number } | { ok: false; reason: RelayRefusal; detail: string } {
    if (body.time < this.startS) return this.refuse('old-epoch', `attestation of ${body.time} is before the epoch (${this.startS})`);
    if (body.time >= this.endS) return this.refuse('future', `attestation of ${body.time} is after the epoch`);
    let origin: string;
    try {
      origin = identityFromKid(body.origin).id;
    } catch (err) {
      return this.refuse('malformed', `origin: ${(err as Error).message}`);
    }
    if (origin === relay) return this.refuse('self', 'a box does not relay for itself');
    let claims = this.claims.get(relay);
    if (!claims) this.claims.set(relay, claims = new Set());
    let matched = 0;
    let claimed = 0;
    body.hashes.forEach((hash, i) => {
      if (hash.length !== RELAY_HASH_BYTES) return;
      const key = `${origin}/${body.firstSeq + i}`;
      // The same reading named twice by one relay counts once.
      if (claims.has(key)) return;
      claims.add(key);
      claimed++;
      const held = this.readingHash(origin, body.firstSeq + i);
      if (!held || !bytesEqual(relayHash(held), hash)) {
        this.unmatched++;
        return;
      }
      matched++;
      let set = this.carriers.get(key);
      if (!set) this.carriers.set(key, set = new Set());
      set.add(relay);
    });
    return { ok: true, matched, claimed };
  }

  private refuse(reason: RelayRefusal, detail: string): { ok: false; reason: RelayRefusal; detail: string } {
    this.refused[reason]++;
    return { ok: false, reason, detail };
  }

  /** Per relay: readings claimed, and credited (a reading two relays both carried is half each). */
  settle(): Map<string, RelayCredit> {
    const out = new Map<string, RelayCredit>();
    for (const [relay, claims] of this.claims) out.set(relay, { claimed: claims.size, credited: 0 });
    for (const relays of this.carriers.values()) {
      for (const relay of relays) out.get(relay)!.credited += 1 / relays.size;
    }
    return out;
  }
}
