// JSON signed by a box or a gateway key as a COSE_Sign1 (protected header: alg,
// content type application/json, kid), for the pairing claim and the pairing receipt.
// No chain header: these messages are not readings.
import { encodeSign1, parseSign1Parts, sigStructure } from '../codec/cose.ts';
import { encodeCbor } from '../codec/cbor.ts';
import { identityFromKid, type DeviceIdentity } from '../codec/identity.ts';
import type { DeviceKey } from '../identity/device-key.ts';

const ALG = 1;
const CONTENT_TYPE = 3;
const KID = 4;

export async function signJson(identity: DeviceIdentity, key: DeviceKey, value: unknown): Promise<Uint8Array> {
  const protectedBytes = encodeCbor(new Map<number, unknown>([[ALG, key.scheme.coseAlg], [CONTENT_TYPE, 'application/json'], [KID, identity.kid]]));
  const payload = new TextEncoder().encode(JSON.stringify(value));
  return encodeSign1(protectedBytes, payload, await key.sign(sigStructure(protectedBytes, payload)));
}

/** Parses and verifies; throws with the reason when malformed or the signature fails. */
export function openJson(bytes: Uint8Array): { signer: DeviceIdentity; value: unknown } {
  const parts = parseSign1Parts(bytes, []);
  const signer = identityFromKid(parts.kid);
  if (!signer.scheme.acceptedAlgs.includes(parts.alg)) throw new Error(`alg ${parts.alg} does not fit the signer's key`);
  if (!signer.scheme.verify(parts.signature, sigStructure(parts.protectedBytes, parts.payload), signer.publicKey)) {
    throw new Error(`the signature of ${signer.id} does not verify`);
  }
  return { signer, value: JSON.parse(new TextDecoder().decode(parts.payload)) as unknown };
}
