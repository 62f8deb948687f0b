// Gateway receipts: "I have durably accepted every reading of device D up to seq N,
// the last of which hashes to H", signed by the gateway's key. A box deletes a reading
// only when a receipt from a gateway it trusts covers it.
import { decodeCbor, encodeCbor } from './cbor.ts';
import { CHAIN_HASH_LENGTH, CoseError, HEADER, encodeSign1, parseSign1Parts, safeInteger, sigStructure, type SignFunction } from './cose.ts';
import { identityFromKid, type DeviceIdentity } from './identity.ts';

/** CoAP Content-Format of application/cbor. */
export const CONTENT_FORMAT_CBOR = 60;
export const RECEIPT = { device: 1, seq: 2, hash: 3, time: 4 } as const;

export interface Receipt {
  /** device id the receipt is for */
  device: string;
  /** highest contiguous seq the gateway holds */
  seq: number;
  /** SHA-256 of that message */
  hash: Uint8Array;
  /** Unix seconds when the gateway made the receipt */
  time: number;
}

export interface VerifiedReceipt extends Receipt {
  gateway: DeviceIdentity;
  valid: boolean;
}

type ReceiptFields = Receipt & { deviceKid: Uint8Array };

function receiptParts(gateway: DeviceIdentity, receipt: ReceiptFields): { protectedBytes: Uint8Array; payload: Uint8Array } {
  const protectedBytes = encodeCbor(new Map<number, unknown>([
    [HEADER.alg, gateway.scheme.coseAlg],
    [HEADER.contentType, CONTENT_FORMAT_CBOR],
    [HEADER.kid, gateway.kid],
  ]));
  const payload = encodeCbor(new Map<number, unknown>([
    [RECEIPT.device, receipt.deviceKid],
    [RECEIPT.seq, receipt.seq],
    [RECEIPT.hash, receipt.hash],
    [RECEIPT.time, Math.floor(receipt.time)],
  ]));
  return { protectedBytes, payload };
}

export async function signReceipt(gateway: DeviceIdentity, sign: SignFunction, receipt: ReceiptFields): Promise<Uint8Array> {
  const { protectedBytes, payload } = receiptParts(gateway, receipt);
  return encodeSign1(protectedBytes, payload, await sign(sigStructure(protectedBytes, payload)));
}

export function signReceiptSync(gateway: DeviceIdentity, sign: (toBeSigned: Uint8Array) => Uint8Array, receipt: ReceiptFields): Uint8Array {
  const { protectedBytes, payload } = receiptParts(gateway, receipt);
  return encodeSign1(protectedBytes, payload, sign(sigStructure(protectedBytes, payload)));
}

/** Throws CoseError for a malformed receipt; `valid` says whether the signature holds. */
export function verifyReceipt(bytes: Uint8Array): VerifiedReceipt {
  const parts = parseSign1Parts(bytes, [HEADER.alg, HEADER.contentType, HEADER.kid]);
  let gateway: DeviceIdentity;
  try {
    gateway = identityFromKid(parts.kid);
  } catch (err) {
    throw new CoseError(`receipt kid: ${(err as Error).message}`);
  }
  if (!gateway.scheme.acceptedAlgs.includes(parts.alg)) throw new CoseError(`receipt alg ${parts.alg} does not match a ${gateway.scheme.name} key`);
  let body: unknown;
  try {
    body = decodeCbor(parts.payload);
  } catch (err) {
    throw new CoseError(`receipt payload is not CBOR: ${(err as Error).message}`);
  }
  if (!(body instanceof Map)) throw new CoseError('receipt payload is not a map');
  const deviceKid = body.get(RECEIPT.device);
  const seq = safeInteger(body.get(RECEIPT.seq));
  const hash = body.get(RECEIPT.hash);
  const time = safeInteger(body.get(RECEIPT.time));
  if (!(deviceKid instanceof Uint8Array)) throw new CoseError('receipt has no device kid');
  if (seq === undefined || seq < 0) throw new CoseError('receipt seq is not an unsigned integer');
  if (!(hash instanceof Uint8Array) || hash.length !== CHAIN_HASH_LENGTH) throw new CoseError('receipt hash is not 32 bytes');
  if (time === undefined) throw new CoseError('receipt time is missing');
  let device: string;
  try {
    device = identityFromKid(deviceKid).id;
  } catch (err) {
    throw new CoseError(`receipt device: ${(err as Error).message}`);
  }
  const valid = gateway.scheme.verify(parts.signature, sigStructure(parts.protectedBytes, parts.payload), gateway.publicKey);
  return { gateway, device, seq, hash, time, valid };
}
