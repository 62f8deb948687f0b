// Signature checks on the gateway's hot path. The codec checks with @noble/curves (pure
// JS: it runs wherever a consumer does); the gateway, a Node process verifying every
// reading of many boxes, uses OpenSSL through node:crypto, several times faster. Both
// apply RFC 8032's strict rules (canonical S below L, canonical encodings, the
// cofactorless equation), the same acceptance as the codec (agent/codec/identity.ts).
// A device's public key is imported once and kept.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { DeviceIdentity } from '../codec/identity.ts';

const MAX_KEYS = 100_000;
const keys = new Map<string, KeyObject | null>();

function keyOf(identity: DeviceIdentity): KeyObject | null {
  let key = keys.get(identity.id);
  if (key === undefined) {
    try {
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(identity.publicKey).toString('base64url') }, format: 'jwk' });
    } catch {
      key = null; // not a point on the curve: nothing it signs verifies
    }
    if (keys.size >= MAX_KEYS) keys.clear();
    keys.set(identity.id, key);
  }
  return key;
}

/** Whether `signature` over `message` verifies under the device's key (its scheme's rules). */
export function verifyEd25519(identity: DeviceIdentity, signature: Uint8Array, message: Uint8Array): boolean {
  if (identity.scheme.name !== 'Ed25519') return identity.scheme.verify(signature, message, identity.publicKey);
  const key = keyOf(identity);
  if (!key || signature.length !== 64) return false;
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}
