// The consumer's verification library: plain Uint8Array in, plain objects out, no
// Node-only APIs, so it runs in a browser or any other JS runtime.
import { decodeCbor } from './cbor.ts';
import { chainStatus, messageHash, type ChainLink, type ChainStatus } from './chain.ts';
import { CONTENT_FORMAT_SENML_CBOR, parseSign1, sigStructure } from './cose.ts';
import { toHex } from './hex.ts';
import { identityFromKid, identityFromPublicKey, ED25519, type DeviceIdentity } from './identity.ts';
import { resolveSenmlPack, type ResolvedRecord } from './senml.ts';

export type { ChainStatus } from './chain.ts';
export type { ResolvedRecord } from './senml.ts';

export interface VerifiedReading {
  device: string;
  seq: number;
  prev: Uint8Array;
  /** SHA-256 of this message: the next message's prev */
  hash: Uint8Array;
  valid: boolean;
  chain: ChainStatus;
  records: ResolvedRecord[];
}

export interface VerifierOptions {
  /** Accept only messages signed by this raw Ed25519 public key. */
  publicKey?: Uint8Array;
  /** Unix seconds, for SenML times written relative to "now". */
  now?: () => number;
}

export class VerifyError extends Error {
  override name = 'VerifyError';
}

/**
 * Verifies messages one at a time and checks each device's chain against the
 * previous message it saw from that device.
 */
export class ReadingVerifier {
  private readonly pinned: DeviceIdentity | undefined;
  private readonly now: () => number;
  private readonly lastLink = new Map<string, ChainLink>();

  constructor(options: VerifierOptions = {}) {
    this.pinned = options.publicKey ? identityFromPublicKey(ED25519, options.publicKey) : undefined;
    this.now = options.now ?? (() => Date.now() / 1000);
  }

  /** Throws VerifyError when the bytes are not a well-formed signed reading. */
  verify(bytes: Uint8Array): VerifiedReading {
    let parsed;
    try {
      parsed = parseSign1(bytes);
    } catch (err) {
      throw new VerifyError((err as Error).message);
    }
    const { header } = parsed;
    let identity: DeviceIdentity;
    try {
      identity = identityFromKid(header.kid);
    } catch (err) {
      throw new VerifyError((err as Error).message);
    }
    if (this.pinned && this.pinned.id !== identity.id) {
      throw new VerifyError(`kid names device ${identity.id}, not the device of the given public key (${this.pinned.id})`);
    }
    if (!identity.scheme.acceptedAlgs.includes(header.alg)) {
      throw new VerifyError(`alg ${header.alg} does not match a ${identity.scheme.name} key`);
    }
    if (parsed.contentType !== undefined && parsed.contentType !== CONTENT_FORMAT_SENML_CBOR) {
      throw new VerifyError(`content type ${String(parsed.contentType)} is not SenML CBOR (${CONTENT_FORMAT_SENML_CBOR})`);
    }
    let records: ResolvedRecord[];
    try {
      records = resolveSenmlPack(decodeCbor(parsed.payload), this.now());
    } catch (err) {
      throw new VerifyError(`payload: ${(err as Error).message}`);
    }
    const valid = identity.scheme.verify(parsed.signature, sigStructure(parsed.protectedBytes, parsed.payload), identity.publicKey);
    const hash = messageHash(bytes);
    const chain = chainStatus(this.lastLink.get(identity.id), header.seq, header.prev);
    // Only a message that verifies and does not go back may become the reference for
    // the next one, so neither a forgery nor a replay makes the genuine successor look broken.
    if (valid && chain !== 'broken') this.lastLink.set(identity.id, { seq: header.seq, hash });
    return { device: identity.id, seq: header.seq, prev: header.prev, hash, valid, chain, records };
  }
}

/** The JSON shape of one verified reading, as `iop-agent verify` prints it. */
export function readingToJson(reading: VerifiedReading) {
  return {
    device: reading.device,
    seq: reading.seq,
    prev: toHex(reading.prev),
    valid: reading.valid,
    chain: reading.chain,
    records: reading.records,
  };
}
