// A box's status, signed by the box: how a box without an uplink of its own tells the
// world it is alive. The uplink box that publishes it cannot alter it, and whoever reads
// the status topic can check it came from the box (docs/protocol.md, "Status").
// COSE_Sign1 with protected header {1: alg, 3: 50 (application/json), 4: kid} and the
// status JSON (UTF-8) as payload.
import { encodeCbor } from './cbor.ts';
import { CoseError, HEADER, encodeSign1, parseSign1Parts, sigStructure, type SignFunction } from './cose.ts';
import { identityFromKid, type DeviceIdentity } from './identity.ts';

/** CoAP Content-Format of application/json. */
export const CONTENT_FORMAT_JSON = 50;

export interface VerifiedStatus {
  /** the device that signed it */
  device: string;
  /** the status object, as the device wrote it */
  status: Record<string, unknown>;
  valid: boolean;
}

export async function signStatus(device: DeviceIdentity, sign: SignFunction, status: Record<string, unknown>): Promise<Uint8Array> {
  const protectedBytes = encodeCbor(new Map<number, unknown>([
    [HEADER.alg, device.scheme.coseAlg],
    [HEADER.contentType, CONTENT_FORMAT_JSON],
    [HEADER.kid, device.kid],
  ]));
  const payload = new TextEncoder().encode(JSON.stringify(status));
  return encodeSign1(protectedBytes, payload, await sign(sigStructure(protectedBytes, payload)));
}

/**
 * Throws CoseError for anything that is not a signed status; `valid` says whether the
 * signature holds. The status must name the signer as its `id`.
 */
export function verifyStatus(bytes: Uint8Array): VerifiedStatus {
  const parts = parseSign1Parts(bytes, [HEADER.alg, HEADER.contentType, HEADER.kid]);
  let device: DeviceIdentity;
  try {
    device = identityFromKid(parts.kid);
  } catch (err) {
    throw new CoseError(`status kid: ${(err as Error).message}`);
  }
  if (!device.scheme.acceptedAlgs.includes(parts.alg)) throw new CoseError(`status alg ${parts.alg} does not match a ${device.scheme.name} key`);
  if (parts.headers.get(HEADER.contentType) !== CONTENT_FORMAT_JSON) throw new CoseError(`status content type is not ${CONTENT_FORMAT_JSON} (application/json)`);
  let status: unknown;
  try {
    status = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(parts.payload));
  } catch (err) {
    throw new CoseError(`status payload is not JSON: ${(err as Error).message}`);
  }
  if (typeof status !== 'object' || status === null || Array.isArray(status)) throw new CoseError('status payload is not a JSON object');
  const fields = status as Record<string, unknown>;
  if (fields.id !== device.id) throw new CoseError(`status names device ${String(fields.id)} but is signed by ${device.id}`);
  if (typeof fields.online !== 'boolean') throw new CoseError('status has no boolean "online"');
  if (typeof fields.time !== 'number' || !Number.isFinite(fields.time)) throw new CoseError('status has no numeric "time"');
  const valid = device.scheme.verify(parts.signature, sigStructure(parts.protectedBytes, parts.payload), device.publicKey);
  return { device: device.id, status: fields, valid };
}
