// Device ids are self-certifying: the id is the device's public key (with its curve),
// written in base32. Anyone holding a message can verify it without a key registry;
// a registry (pairing) then only has to say whom an id belongs to.
import { ed25519 } from '@noble/curves/ed25519.js';
import { fromBase32, toBase32 } from './base32.ts';

/** A signature scheme a device key can use. Add a row to SCHEMES to support another one. */
export interface SignatureScheme {
  readonly name: string;
  /** COSE curve id (RFC 9053), also the first byte of a kid. */
  readonly curve: number;
  /** COSE alg id this project writes. */
  readonly coseAlg: number;
  /** COSE alg ids a verifier accepts for this key type. */
  readonly acceptedAlgs: readonly number[];
  readonly publicKeyLength: number;
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

export const ED25519: SignatureScheme = {
  name: 'Ed25519',
  curve: 6,
  coseAlg: -8, // EdDSA (RFC 9053)
  acceptedAlgs: [-8, -19], // -19 is the fully specified Ed25519 id of RFC 9864
  publicKeyLength: 32,
  verify(signature, message, publicKey) {
    try {
      // Strict RFC 8032 checks, the same acceptance rules as OpenSSL on the box.
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
};

const SCHEMES: readonly SignatureScheme[] = [ED25519];

export interface DeviceIdentity {
  readonly id: string;
  readonly kid: Uint8Array;
  readonly scheme: SignatureScheme;
  readonly publicKey: Uint8Array;
}

export function identityFromPublicKey(scheme: SignatureScheme, publicKey: Uint8Array): DeviceIdentity {
  if (publicKey.length !== scheme.publicKeyLength) {
    throw new Error(`${scheme.name} public key must be ${scheme.publicKeyLength} bytes, got ${publicKey.length}`);
  }
  const kid = new Uint8Array(1 + publicKey.length);
  kid[0] = scheme.curve;
  kid.set(publicKey, 1);
  return { id: toBase32(kid), kid, scheme, publicKey: kid.subarray(1) };
}

export function identityFromKid(kid: Uint8Array): DeviceIdentity {
  const scheme = SCHEMES.find((s) => s.curve === kid[0]);
  if (!scheme) throw new Error(`kid names unknown key type ${kid[0] ?? '(empty)'}`);
  if (kid.length !== 1 + scheme.publicKeyLength) {
    throw new Error(`kid for ${scheme.name} must be ${1 + scheme.publicKeyLength} bytes, got ${kid.length}`);
  }
  return identityFromPublicKey(scheme, kid.subarray(1));
}

export function identityFromId(id: string): DeviceIdentity {
  let kid: Uint8Array;
  try {
    kid = fromBase32(id);
  } catch (err) {
    throw new Error(`device id '${id}' is not valid: ${(err as Error).message}`);
  }
  const identity = identityFromKid(kid);
  if (identity.id !== id) throw new Error(`device id '${id}' is not in canonical form (expected ${identity.id})`);
  return identity;
}
