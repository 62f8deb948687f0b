// What the gateway checks of each data message before it goes to the store (docs/gateway.md):
// size, COSE structure, that its key is the device its topic names, the allow-list, the
// algorithm and the Ed25519 signature. Also how a verified reading is published on
// `verified`. The chain (linking to its predecessor) is the store's check, per device.
import { hash } from 'node:crypto';
import { parseSign1, sigStructure } from '../codec/cose.ts';
import { decodeCbor } from '../codec/cbor.ts';
import { identityFromKid, type DeviceIdentity } from '../codec/identity.ts';
import { resolveSenmlPack } from '../codec/senml.ts';
import { errorMessage } from '../errors.ts';
import { parseTopic, type TopicTarget } from '../uplink/topics.ts';
import type { DeviceRegistry } from './registry.ts';
import type { IncomingReading } from './store.ts';
import { verifyEd25519 } from './verify.ts';

export type RejectReason = 'malformed' | 'too-large' | 'bad-signature' | 'unknown-device' | 'topic-mismatch' | 'broken-chain' | 'conflict';

const MAX_MESSAGE_BYTES = 64 * 1024;
/** identities kept by kid; beyond this the cache starts again (a flood of forged kids costs no memory) */
export const MAX_IDENTITIES = 100_000;
/** Where each message's Sig_structure is written to be verified (synchronously): no allocation per message. */
const sigScratch = new Uint8Array(MAX_MESSAGE_BYTES + 64);

/** A verified reading waiting for the store. */
export interface Verified {
  identity: DeviceIdentity;
  reading: IncomingReading;
  /**
   * Its records as `verified` publishes them, serialised when it came: one string held
   * while it waits for the store, not a tree of objects for the garbage collector to
   * walk and move.
   */
  records: string;
}

export interface Rejection { reason: RejectReason; detail: string }

/** The records of a message, as `verified` publishes them (a valid payload: it was stored). */
export function recordsOf(payload: Uint8Array): string {
  return JSON.stringify(resolveSenmlPack(decodeCbor(payload), Date.now() / 1000));
}

/**
 * The `verified` message: what JSON.stringify makes of { device, seq, prev, valid, chain,
 * records }, put together from its parts (the records serialised already).
 */
export function verifiedBody(device: string, seq: number, prev: Uint8Array, chain: string, records: string): string {
  const prevHex = Buffer.from(prev.buffer, prev.byteOffset, prev.byteLength).toString('hex');
  return `{"device":${JSON.stringify(device)},"seq":${seq},"prev":"${prevHex}","valid":true,"chain":${JSON.stringify(chain)},"records":${records}}`;
}

export class ReadingCheck {
  /** devices' identities by kid (its bytes as a latin1 string): made once per device, not per message */
  private readonly identities = new Map<string, DeviceIdentity>();
  private readonly registry: DeviceRegistry;

  constructor(registry: DeviceRegistry) {
    this.registry = registry;
  }

  /**
   * One data message: the reading to store, or why it is refused. Never throws. `target`:
   * what parseTopic made of `topic`, when the caller has it already.
   */
  check(topic: string, bytes: Uint8Array, target: TopicTarget | undefined = parseTopic(topic)): Verified | Rejection {
    if (!target || target.kind !== 'data') return { reason: 'malformed', detail: `message on unexpected topic ${topic}` };
    if (bytes.length > MAX_MESSAGE_BYTES) return { reason: 'too-large', detail: `${bytes.length}-byte message on ${topic}` };
    let parsed;
    let identity: DeviceIdentity;
    let records: string;
    try {
      parsed = parseSign1(bytes);
      identity = this.identityOf(parsed.header.kid);
      records = recordsOf(parsed.payload);
    } catch (err) {
      return { reason: 'malformed', detail: `${topic}: ${errorMessage(err)}` };
    }
    if (identity.id !== target.device) return { reason: 'topic-mismatch', detail: `message of device ${identity.id} on the topic of ${target.device}` };
    if (!this.registry.allows(identity.id)) return { reason: 'unknown-device', detail: `device ${identity.id} is not on the allow-list` };
    if (!identity.scheme.acceptedAlgs.includes(parsed.header.alg)) return { reason: 'bad-signature', detail: `${topic}: alg ${parsed.header.alg}` };
    if (!verifyEd25519(identity, parsed.signature, sigStructure(parsed.protectedBytes, parsed.payload, sigScratch))) {
      return { reason: 'bad-signature', detail: `seq ${parsed.header.seq} of ${identity.id}: signature does not verify` };
    }
    return {
      identity,
      // node:crypto's SHA-256, the codec's messageHash, several times faster on this hot path
      reading: { device: identity.id, seq: parsed.header.seq, hash: hash('sha256', bytes, 'buffer'), prev: parsed.header.prev, message: bytes, receivedMs: Date.now() },
      records,
    };
  }

  private identityOf(kid: Uint8Array): DeviceIdentity {
    const key = Buffer.from(kid.buffer, kid.byteOffset, kid.byteLength).toString('latin1');
    let identity = this.identities.get(key);
    if (!identity) {
      identity = identityFromKid(kid);
      if (this.identities.size >= MAX_IDENTITIES) this.identities.clear();
      this.identities.set(key, identity);
    }
    return identity;
  }
}
