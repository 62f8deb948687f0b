// Makes the next message of the box's chain: sequence number one past the head,
// prev = hash of the head message. The journal stores the result only if the head is
// still the one signed against, in the transaction that moves the head.
import { hash } from 'node:crypto';
import { GENESIS_PREV, type ChainLink } from './codec/chain.ts';
import { signSign1, signSign1Sync } from './codec/cose.ts';
import type { DeviceIdentity } from './codec/identity.ts';
import type { DeviceKey } from './identity/device-key.ts';

export interface SignedMessage {
  seq: number;
  bytes: Uint8Array;
  /** SHA-256 of bytes: the next message's prev. */
  hash: Uint8Array;
}

export async function signNext(key: DeviceKey, identity: DeviceIdentity, head: ChainLink | undefined, payload: Uint8Array): Promise<SignedMessage> {
  const seq = head ? head.seq + 1 : 0;
  const header = { alg: key.scheme.coseAlg, kid: identity.kid, seq, prev: head ? head.hash : GENESIS_PREV };
  const bytes = key.signSync ? signSign1Sync(header, payload, key.signSync) : await signSign1(header, payload, key.sign);
  // node:crypto here (the box); the portable codec's messageHash is the same SHA-256.
  return { seq, bytes, hash: hash('sha256', bytes, 'buffer') };
}
