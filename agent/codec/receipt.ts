// Gateway receipts: "I hold, durably and linked, exactly these runs of device D's
// readings; the last reading of each run hashes to H", signed by the gateway's key. A box
// deletes a reading only when a receipt from a gateway it trusts covers it, and checks
// each run against its own chain first (docs/protocol.md, section 6).
//
// Format 1 receipts (keys 1-4 only) name one run from seq 0; they decode as such.
import { decodeCbor, encodeCbor } from './cbor.ts';
import { CHAIN_HASH_LENGTH, CoseError, HEADER, encodeSign1, parseSign1Parts, safeInteger, sigStructure, type SignFunction } from './cose.ts';
import { identityFromKid, type DeviceIdentity } from './identity.ts';

/** CoAP Content-Format of application/cbor. */
export const CONTENT_FORMAT_CBOR = 60;
export const RECEIPT = { device: 1, seq: 2, hash: 3, time: 4, first: 5, above: 6 } as const;
/**
 * Runs one receipt names at most: the lowest and the highest 15. A box holds its newest
 * readings, so the newest runs are the ones it needs; a run left out costs resending.
 */
export const MAX_RECEIPT_RANGES = 16;

/** Readings first..last, all held and each linked to the one before; `hash` is the last one's. */
export interface ReceiptRange {
  first: number;
  last: number;
  hash: Uint8Array;
}

export interface Receipt {
  /** device id the receipt is for */
  device: string;
  /** the top of the lowest run: every reading from ranges[0].first through seq is held */
  seq: number;
  /** SHA-256 of that message */
  hash: Uint8Array;
  /** Unix seconds when the gateway made the receipt */
  time: number;
  /** every run the receipt covers, ascending, with at least one missing seq between two */
  ranges: ReceiptRange[];
  /** the highest seq the receipt covers */
  highest: number;
}

export interface VerifiedReceipt extends Receipt {
  gateway: DeviceIdentity;
  valid: boolean;
}

/** What a gateway signs: the runs it holds, or (the common case) one run from 0 through seq. */
export type ReceiptFields = { deviceKid: Uint8Array; device: string; time: number } &
  ({ ranges: ReceiptRange[] } | { seq: number; hash: Uint8Array });

function receiptParts(gateway: DeviceIdentity, receipt: ReceiptFields): { protectedBytes: Uint8Array; payload: Uint8Array } {
  const ranges = 'ranges' in receipt ? receipt.ranges : [{ first: 0, last: receipt.seq, hash: receipt.hash }];
  checkRanges(ranges);
  const [lowest, ...above] = ranges as [ReceiptRange, ...ReceiptRange[]];
  const protectedBytes = encodeCbor(new Map<number, unknown>([
    [HEADER.alg, gateway.scheme.coseAlg],
    [HEADER.contentType, CONTENT_FORMAT_CBOR],
    [HEADER.kid, gateway.kid],
  ]));
  const body = new Map<number, unknown>([
    [RECEIPT.device, receipt.deviceKid],
    [RECEIPT.seq, lowest.last],
    [RECEIPT.hash, lowest.hash],
    [RECEIPT.time, Math.floor(receipt.time)],
  ]);
  // Absent keys keep the common receipt (one run from seq 0) byte for byte a format 1 receipt.
  if (lowest.first !== 0) body.set(RECEIPT.first, lowest.first);
  if (above.length) body.set(RECEIPT.above, above.map((r) => [r.first, r.last, r.hash]));
  return { protectedBytes, payload: encodeCbor(body) };
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
  if (!isHash(hash)) throw new CoseError('receipt hash is not 32 bytes');
  if (time === undefined) throw new CoseError('receipt time is missing');
  const first = body.has(RECEIPT.first) ? safeInteger(body.get(RECEIPT.first)) : 0;
  if (first === undefined || first < 0) throw new CoseError('receipt first seq is not an unsigned integer');
  const ranges = [{ first, last: seq, hash }, ...decodeAbove(body.get(RECEIPT.above))];
  checkRanges(ranges);
  let device: string;
  try {
    device = identityFromKid(deviceKid).id;
  } catch (err) {
    throw new CoseError(`receipt device: ${(err as Error).message}`);
  }
  const valid = gateway.scheme.verify(parts.signature, sigStructure(parts.protectedBytes, parts.payload), gateway.publicKey);
  return { gateway, device, seq, hash, time, ranges, highest: ranges[ranges.length - 1]!.last, valid };
}

function decodeAbove(value: unknown): ReceiptRange[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new CoseError('receipt ranges are not an array');
  return value.map((item, index) => {
    const first = Array.isArray(item) ? safeInteger(item[0]) : undefined;
    const last = Array.isArray(item) ? safeInteger(item[1]) : undefined;
    const hash: unknown = Array.isArray(item) ? item[2] : undefined;
    if (!Array.isArray(item) || item.length !== 3 || first === undefined || last === undefined || !isHash(hash)) {
      throw new CoseError(`receipt range ${index} is not [first, last, 32-byte hash]`);
    }
    return { first, last, hash };
  });
}

/** Runs ascend with a missing seq between two: a box can trust the shape before the content. */
function checkRanges(ranges: ReceiptRange[]): void {
  if (ranges.length === 0) throw new CoseError('a receipt covers at least one run');
  if (ranges.length > MAX_RECEIPT_RANGES) throw new CoseError(`receipt has ${ranges.length} runs, more than ${MAX_RECEIPT_RANGES}`);
  let below = -2;
  for (const r of ranges) {
    if (r.first < 0 || r.last < r.first) throw new CoseError(`receipt run ${r.first}..${r.last} is empty`);
    if (r.first <= below + 1) throw new CoseError(`receipt run ${r.first}..${r.last} overlaps or touches the run below it`);
    below = r.last;
  }
}

function isHash(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === CHAIN_HASH_LENGTH;
}
