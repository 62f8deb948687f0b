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

export function encodeProtectedHeader(header: ChainHeader): Uint8Array {
  return encodeCbor(new Map<number | string, unknown>([
    [HEADER.alg, header.alg],
    [HEADER.contentType, CONTENT_FORMAT_SENML_CBOR],
    [HEADER.kid, header.kid],
    [HEADER.seq, header.seq],
    [HEADER.prev, header.prev],
  ]));
}

/** The bytes a COSE_Sign1 signature covers (RFC 9052 section 4.4), with no external AAD. */
export function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  return encodeCbor(['Signature1', protectedBytes, new Uint8Array(0), payload]);
}

export async function signSign1(header: ChainHeader, payload: Uint8Array, sign: SignFunction): Promise<Uint8Array> {
  const protectedBytes = encodeProtectedHeader(header);
  const signature = await sign(sigStructure(protectedBytes, payload));
  return encodeSign1(protectedBytes, payload, signature);
}

export function encodeSign1(protectedBytes: Uint8Array, payload: Uint8Array, signature: Uint8Array): Uint8Array {
  const body = encodeCbor([protectedBytes, new Map(), payload, signature]);
  const tagged = new Uint8Array(body.length + 1);
  tagged[0] = 0xc0 | COSE_SIGN1_TAG; // major type 6, tag 18 in the initial byte
  tagged.set(body, 1);
  return tagged;
}

export class CoseError extends Error {
  override name = 'CoseError';
}

export function parseSign1(bytes: Uint8Array): ParsedSign1 {
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

  let headerMap: unknown;
  try {
    headerMap = decodeCbor(protectedBytes);
  } catch (err) {
    throw new CoseError(`protected header is not CBOR: ${(err as Error).message}`);
  }
  if (!(headerMap instanceof Map)) throw new CoseError('protected header is not a map');
  for (const key of unprotected.keys()) {
    if (headerMap.has(key)) throw new CoseError(`header label ${String(key)} is in both protected and unprotected headers`);
  }
  const crit = headerMap.get(HEADER.crit);
  if (crit !== undefined) {
    const understood = new Set<unknown>([HEADER.alg, HEADER.contentType, HEADER.kid, HEADER.seq, HEADER.prev]);
    if (!Array.isArray(crit) || crit.some((label) => !understood.has(label))) throw new CoseError('crit names a header this verifier does not understand');
  }
  const alg = headerMap.get(HEADER.alg);
  if (typeof alg !== 'number' || !Number.isInteger(alg)) throw new CoseError('alg is missing from the protected header');
  const kid = headerMap.get(HEADER.kid);
  if (!(kid instanceof Uint8Array)) throw new CoseError('kid is missing from the protected header');
  const seq = headerMap.get(HEADER.seq);
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw new CoseError('seq is missing or not an unsigned integer');
  const prev = headerMap.get(HEADER.prev);
  if (!(prev instanceof Uint8Array) || prev.length !== CHAIN_HASH_LENGTH) throw new CoseError(`prev is missing or not ${CHAIN_HASH_LENGTH} bytes`);
  return {
    header: { alg, kid, seq, prev },
    contentType: headerMap.get(HEADER.contentType),
    protectedBytes,
    payload,
    signature,
  };
}

function untag(decoded: unknown): unknown {
  if (decoded && typeof decoded === 'object' && 'tag' in decoded && 'value' in decoded) {
    const { tag, value } = decoded as { tag: unknown; value: unknown };
    if (tag !== COSE_SIGN1_TAG) throw new CoseError(`CBOR tag ${String(tag)} is not COSE_Sign1 (18)`);
    return value;
  }
  return decoded;
}
