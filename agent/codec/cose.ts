// COSE_Sign1 (RFC 9052) with this project's protected header: alg, content type,
// kid, and the chain fields "seq" and "prev" (docs/protocol.md).
import { decodeCbor, encodeCbor } from './cbor.ts';

export const COSE_SIGN1_TAG = 18;
export const HEADER = { alg: 1, crit: 2, contentType: 3, kid: 4, seq: 'seq', prev: 'prev' } as const;
/** CoAP Content-Format of application/senml+cbor (RFC 8428). */
export const CONTENT_FORMAT_SENML_CBOR = 112;
export const CHAIN_HASH_LENGTH = 32;

export interface ChainHeader {
  alg: number;
  kid: Uint8Array;
  seq: number;
  prev: Uint8Array;
}

export interface ParsedSign1 {
  header: ChainHeader;
  contentType: unknown;
  protectedBytes: Uint8Array;
  payload: Uint8Array;
  signature: Uint8Array;
}

export type SignFunction = (toBeSigned: Uint8Array) => Promise<Uint8Array> | Uint8Array;

/**
 * {1: alg, 3: 112, 4: kid, "seq": seq, "prev": prev}, assembled directly in this fixed
 * order with shortest-form heads, so the same header always has the same bytes.
 * The COSE structures below are written by hand, not through the CBOR library: their
 * shape is fixed, RFC 9052 requires a deterministic Sig_structure, and they are built
 * for every reading.
 */
export function encodeProtectedHeader(header: ChainHeader): Uint8Array {
  const out = new CborWriter(
    1 + 1 + headLength(header.alg) + CONTENT_TYPE_ENTRY.length + 1 + headLength(header.kid.length) + header.kid.length +
    SEQ_LABEL.length + headLength(header.seq) + PREV_LABEL.length + headLength(header.prev.length) + header.prev.length,
  );
  out.byte(0xa5); // map of 5 pairs
  out.byte(HEADER.alg);
  out.integer(header.alg);
  out.raw(CONTENT_TYPE_ENTRY);
  out.byte(HEADER.kid);
  out.byteString(header.kid);
  out.raw(SEQ_LABEL);
  out.integer(header.seq);
  out.raw(PREV_LABEL);
  out.byteString(header.prev);
  return out.done();
}

/** The bytes a COSE_Sign1 signature covers (RFC 9052 section 4.4), no external AAD: ["Signature1", protected, h'', payload]. */
export function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array, scratch?: Uint8Array): Uint8Array {
  const length = SIG_STRUCTURE_PREFIX.length + byteStringLength(protectedBytes) + 1 + byteStringLength(payload);
  const out = new CborWriter(length, scratch && scratch.length >= length ? scratch.subarray(0, length) : undefined);
  out.raw(SIG_STRUCTURE_PREFIX);
  out.byteString(protectedBytes);
  out.byte(0x40); // empty external_aad
  out.byteString(payload);
  return out.done();
}

export async function signSign1(header: ChainHeader, payload: Uint8Array, sign: SignFunction): Promise<Uint8Array> {
  const protectedBytes = encodeProtectedHeader(header);
  const signature = await sign(sigStructure(protectedBytes, payload));
  return encodeSign1(protectedBytes, payload, signature);
}

/**
 * signSign1 for a signer that needs no I/O and is done with its input when it
 * returns: no promise, and the Sig_structure is built in a reused buffer.
 */
export function signSign1Sync(header: ChainHeader, payload: Uint8Array, sign: (toBeSigned: Uint8Array) => Uint8Array): Uint8Array {
  const protectedBytes = encodeProtectedHeader(header);
  return encodeSign1(protectedBytes, payload, sign(sigStructure(protectedBytes, payload, syncScratch)));
}

// Fits any reading of a box; a larger Sig_structure falls back to its own buffer.
const syncScratch = new Uint8Array(1024);

/** Tag 18, then [protected, {}, payload, signature] with definite lengths. */
export function encodeSign1(protectedBytes: Uint8Array, payload: Uint8Array, signature: Uint8Array): Uint8Array {
  const out = new CborWriter(2 + byteStringLength(protectedBytes) + 1 + byteStringLength(payload) + byteStringLength(signature));
  out.byte(0xc0 | COSE_SIGN1_TAG);
  out.byte(0x84); // array of 4
  out.byteString(protectedBytes);
  out.byte(0xa0); // empty unprotected map
  out.byteString(payload);
  out.byteString(signature);
  return out.done();
}

// 0x84: array of 4; 0x6a: text of 10 bytes; "Signature1".
const SIG_STRUCTURE_PREFIX = new Uint8Array([0x84, 0x6a, ...new TextEncoder().encode('Signature1')]);
const CONTENT_TYPE_ENTRY = new Uint8Array([HEADER.contentType, 0x18, CONTENT_FORMAT_SENML_CBOR]);
const SEQ_LABEL = encodeCbor(HEADER.seq);
const PREV_LABEL = encodeCbor(HEADER.prev);

/** Bytes of the shortest CBOR head for an argument (RFC 8949 section 3). */
function headLength(value: number): number {
  const argument = value < 0 ? -1 - value : value;
  return argument < 24 ? 1 : argument < 0x100 ? 2 : argument < 0x10000 ? 3 : argument < 0x100000000 ? 5 : 9;
}

function byteStringLength(bytes: Uint8Array): number {
  return headLength(bytes.length) + bytes.length;
}

/** Writes CBOR into a buffer of a size computed up front. */
class CborWriter {
  private readonly bytes: Uint8Array;
  private offset = 0;

  constructor(length: number, into?: Uint8Array) {
    this.bytes = into ?? new Uint8Array(length);
  }

  byte(value: number): void {
    this.bytes[this.offset++] = value;
  }

  raw(bytes: Uint8Array): void {
    this.bytes.set(bytes, this.offset);
    this.offset += bytes.length;
  }

  byteString(bytes: Uint8Array): void {
    this.head(0x40, bytes.length);
    this.raw(bytes);
  }

  /** A CBOR integer (major type 0 or 1) up to 2^53 in magnitude. */
  integer(value: number): void {
    if (!Number.isSafeInteger(value)) throw new RangeError(`${value} is not a safe integer`);
    if (value < 0) this.head(0x20, -1 - value);
    else this.head(0x00, value);
  }

  head(major: number, argument: number): void {
    const b = this.bytes;
    if (argument < 24) {
      b[this.offset++] = major | argument;
    } else if (argument < 0x100) {
      b[this.offset++] = major | 24;
      b[this.offset++] = argument;
    } else if (argument < 0x10000) {
      b[this.offset++] = major | 25;
      b[this.offset++] = argument >> 8;
      b[this.offset++] = argument & 0xff;
    } else {
      const wide = argument >= 0x100000000;
      b[this.offset++] = major | (wide ? 27 : 26);
      if (wide) {
        const high = Math.floor(argument / 0x100000000);
        for (let shift = 24; shift >= 0; shift -= 8) b[this.offset++] = (high / 2 ** shift) & 0xff;
      }
      const low = argument >>> 0;
      for (let shift = 24; shift >= 0; shift -= 8) b[this.offset++] = (low >>> shift) & 0xff;
    }
  }

  done(): Uint8Array {
    if (this.offset !== this.bytes.length) throw new Error(`CBOR writer: wrote ${this.offset} of ${this.bytes.length} bytes`);
    return this.bytes;
  }
}

export class CoseError extends Error {
  override name = 'CoseError';
}

/** A COSE_Sign1 taken apart, before any application header is read. */
export interface Sign1Parts {
  headers: Map<unknown, unknown>;
  alg: number;
  kid: Uint8Array;
  protectedBytes: Uint8Array;
  payload: Uint8Array;
  signature: Uint8Array;
}

/** Structure, alg and kid of any COSE_Sign1; `understood` lists labels a crit may name. */
export function parseSign1Parts(bytes: Uint8Array, understood: readonly unknown[]): Sign1Parts {
  let decoded: unknown;
  try {
    decoded = decodeCbor(bytes);
  } catch (err) {
    throw new CoseError(`not CBOR: ${(err as Error).message}`);
  }
  const array = untag(decoded);
  if (!Array.isArray(array) || array.length !== 4) throw new CoseError('not a COSE_Sign1: expected an array of 4 items');
  const [protectedBytes, unprotected, payload, signature] = array as unknown[];
  if (!(protectedBytes instanceof Uint8Array) || protectedBytes.length === 0) throw new CoseError('protected header is not a non-empty byte string');
  if (!(unprotected instanceof Map)) throw new CoseError('unprotected header is not a map');
  if (!(payload instanceof Uint8Array)) throw new CoseError('payload is missing or not a byte string (detached payloads are not accepted)');
  if (!(signature instanceof Uint8Array)) throw new CoseError('signature is not a byte string');

  let headers: unknown;
  try {
    headers = decodeCbor(protectedBytes);
  } catch (err) {
    throw new CoseError(`protected header is not CBOR: ${(err as Error).message}`);
  }
  if (!(headers instanceof Map)) throw new CoseError('protected header is not a map');
  for (const key of unprotected.keys()) {
    if (headers.has(key)) throw new CoseError(`header label ${String(key)} is in both protected and unprotected headers`);
  }
  const crit = headers.get(HEADER.crit);
  if (crit !== undefined && (!Array.isArray(crit) || crit.some((label) => !understood.includes(label)))) {
    throw new CoseError('crit names a header this verifier does not understand');
  }
  const alg = headers.get(HEADER.alg);
  if (typeof alg !== 'number' || !Number.isInteger(alg)) throw new CoseError('alg is missing from the protected header');
  const kid = headers.get(HEADER.kid);
  if (!(kid instanceof Uint8Array)) throw new CoseError('kid is missing from the protected header');
  return { headers, alg, kid, protectedBytes, payload, signature };
}

/** A signed reading: a COSE_Sign1 with this project's chain header. */
export function parseSign1(bytes: Uint8Array): ParsedSign1 {
  const parts = parseSign1Parts(bytes, [HEADER.alg, HEADER.contentType, HEADER.kid, HEADER.seq, HEADER.prev]);
  const seq = safeInteger(parts.headers.get(HEADER.seq));
  if (seq === undefined || seq < 0) throw new CoseError('seq is missing or not an unsigned integer below 2^53');
  const prev = parts.headers.get(HEADER.prev);
  if (!(prev instanceof Uint8Array) || prev.length !== CHAIN_HASH_LENGTH) throw new CoseError(`prev is missing or not ${CHAIN_HASH_LENGTH} bytes`);
  return {
    header: { alg: parts.alg, kid: parts.kid, seq, prev },
    contentType: parts.headers.get(HEADER.contentType),
    protectedBytes: parts.protectedBytes,
    payload: parts.payload,
    signature: parts.signature,
  };
}

/** The decoder gives integers of 2^32 and more as bigint. */
export function safeInteger(value: unknown): number | undefined {
  if (typeof value === 'bigint') return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : undefined;
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined;
}

function untag(decoded: unknown): unknown {
  if (decoded && typeof decoded === 'object' && 'tag' in decoded && 'value' in decoded) {
    const { tag, value } = decoded as { tag: unknown; value: unknown };
    if (tag !== COSE_SIGN1_TAG) throw new CoseError(`CBOR tag ${String(tag)} is not COSE_Sign1 (18)`);
    return value;
  }
  return decoded;
}
