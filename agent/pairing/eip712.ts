// EIP-712 typed data for the two messages an owner signs (Pairing, Command), their
// digests and the recovery of the signer's Ethereum address. Only the field types these
// messages use are encoded (string, address, bytes32, uint64): anything else is refused.
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { fromHex, toHex } from '../codec/hex.ts';

export const DOMAIN = { name: 'iop-agent', version: '1' } as const;
export const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';

export interface TypedField { name: string; type: 'string' | 'address' | 'bytes32' | 'uint64' }

export const TYPES = {
  EIP712Domain: [{ name: 'name', type: 'string' }, { name: 'version', type: 'string' }],
  Pairing: [
    { name: 'device', type: 'string' },
    { name: 'owner', type: 'address' },
    { name: 'previousOwner', type: 'address' },
    { name: 'nonce', type: 'bytes32' },
    { name: 'expires', type: 'uint64' },
  ],
  Command: [
    { name: 'device', type: 'string' },
    { name: 'counter', type: 'uint64' },
    { name: 'expires', type: 'uint64' },
    { name: 'action', type: 'string' },
    { name: 'args', type: 'string' },
  ],
} as const satisfies Record<string, readonly TypedField[]>;

export interface PairingMessage { device: string; owner: string; previousOwner: string; nonce: string; expires: number }
export interface CommandMessage { device: string; counter: number; expires: number; action: string; args: string }

/** What a wallet's eth_signTypedData_v4 takes, for one primary type. */
export interface TypedData<M> {
  types: { EIP712Domain: readonly TypedField[] } & Record<string, readonly TypedField[]>;
  primaryType: string;
  domain: { name: string; version: string };
  message: M;
}

export function pairingTypedData(message: PairingMessage): TypedData<PairingMessage> {
  return { types: { EIP712Domain: TYPES.EIP712Domain, Pairing: TYPES.Pairing }, primaryType: 'Pairing', domain: { ...DOMAIN }, message };
}

export function commandTypedData(message: CommandMessage): TypedData<CommandMessage> {
  return { types: { EIP712Domain: TYPES.EIP712Domain, Command: TYPES.Command }, primaryType: 'Command', domain: { ...DOMAIN }, message };
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const MAX_UINT64 = (1n << 64n) - 1n;

export function isAddress(text: unknown): text is string {
  return typeof text === 'string' && ADDRESS.test(text);
}

function typeString(name: string, fields: readonly TypedField[]): string {
  return `${name}(${fields.map((f) => `${f.type} ${f.name}`).join(',')})`;
}

function encodeField(field: TypedField, value: unknown): Uint8Array {
  const out = new Uint8Array(32);
  switch (field.type) {
    case 'string':
      if (typeof value !== 'string') throw new TypeError(`${field.name}: expected a string`);
      return keccak_256(new TextEncoder().encode(value));
    case 'address':
      if (!isAddress(value)) throw new TypeError(`${field.name}: expected an address (0x and 40 hex digits)`);
      out.set(fromHex(value), 12);
      return out;
    case 'bytes32':
      if (typeof value !== 'string' || !BYTES32.test(value)) throw new TypeError(`${field.name}: expected 0x and 64 hex digits`);
      return fromHex(value);
    case 'uint64': {
      if (!(typeof value === 'number' && Number.isSafeInteger(value)) && typeof value !== 'bigint' && !(typeof value === 'string' && /^\d{1,20}$/.test(value))) {
        throw new TypeError(`${field.name}: expected a whole number`);
      }
      let n = BigInt(value);
      if (n < 0n || n > MAX_UINT64) throw new TypeError(`${field.name}: out of uint64 range`);
      for (let i = 31; i >= 24; i--) { out[i] = Number(n & 0xffn); n >>= 8n; }
      return out;
    }
  }
}

function hashStruct(name: string, fields: readonly TypedField[], value: Record<string, unknown>): Uint8Array {
  const parts = [keccak_256(new TextEncoder().encode(typeString(name, fields))), ...fields.map((f) => encodeField(f, value[f.name]))];
  return keccak_256(concat(parts));
}

/** keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message)): the digest the owner signs. */
export function typedDataDigest(data: TypedData<object>): Uint8Array {
  const fields = data.types[data.primaryType];
  if (!fields) throw new TypeError(`no type '${data.primaryType}'`);
  const domain = hashStruct('EIP712Domain', data.types.EIP712Domain, data.domain);
  const struct = hashStruct(data.primaryType, fields, data.message as Record<string, unknown>);
  return keccak_256(concat([Uint8Array.of(0x19, 0x01), domain, struct]));
}

export class SignatureError extends Error {
  override name = 'SignatureError';
}

/** The address (checksummed) whose key made `signature` (0x + r ‖ s ‖ v, 65 bytes) over `digest`. */
export function recoverAddress(digest: Uint8Array, signature: string): string {
  if (typeof signature !== 'string' || !/^0x[0-9a-fA-F]{130}$/.test(signature)) {
    throw new SignatureError('expected a signature of 0x and 130 hex digits (65 bytes: r, s, v)');
  }
  const bytes = fromHex(signature);
  const v = bytes[64]!;
  const recovery = v >= 27 ? v - 27 : v;
  if (recovery !== 0 && recovery !== 1) throw new SignatureError(`signature v is ${v}, expected 27 or 28`);
  let point;
  try {
    const sig = secp256k1.Signature.fromBytes(bytes.subarray(0, 64), 'compact');
    // A high s is the same signature flipped: refused so each signature has one form.
    if (sig.hasHighS()) throw new SignatureError('signature s is not in the lower half (malleable form)');
    point = sig.addRecoveryBit(recovery).recoverPublicKey(digest);
  } catch (err) {
    if (err instanceof SignatureError) throw err;
    throw new SignatureError('the signature does not recover to any key');
  }
  return publicKeyAddress(point.toBytes(false));
}

/** Ethereum address of an uncompressed secp256k1 public key (65 bytes, 0x04 first). */
export function publicKeyAddress(uncompressed: Uint8Array): string {
  return checksumAddress('0x' + toHex(keccak_256(uncompressed.subarray(1)).subarray(12)));
}

/** EIP-55 mixed-case form, the one wallets show. */
export function checksumAddress(address: string): string {
  const lower = address.slice(2).toLowerCase();
  const hash = toHex(keccak_256(new TextEncoder().encode(lower)));
  let out = '0x';
  for (let i = 0; i < 40; i++) out += parseInt(hash[i]!, 16) >= 8 ? lower[i]!.toUpperCase() : lower[i];
  return out;
}

export function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}
