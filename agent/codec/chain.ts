// The hash chain: every message names the SHA-256 of the complete previous message
// (its exact bytes, tag included), so a removed, reordered or altered message shows.
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesEqual } from './hex.ts';
import { CHAIN_HASH_LENGTH } from './cose.ts';

export type ChainStatus = 'start' | 'ok' | 'gap' | 'broken';

/** The prev of a device's first message (seq 0). */
export const GENESIS_PREV = new Uint8Array(CHAIN_HASH_LENGTH);

export interface ChainLink {
  seq: number;
  hash: Uint8Array;
}

export function messageHash(messageBytes: Uint8Array): Uint8Array {
  return sha256(messageBytes);
}

/** How a message (seq, prev) follows the previous message seen from the same device. */
export function chainStatus(previous: ChainLink | undefined, seq: number, prev: Uint8Array): ChainStatus {
  if (!previous) return 'start';
  if (seq <= previous.seq) return 'broken';
  if (seq > previous.seq + 1) return 'gap';
  return bytesEqual(prev, previous.hash) ? 'ok' : 'broken';
}
