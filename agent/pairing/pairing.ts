// Owner pairing on the box: `pair start` makes a nonce and the EIP-712 typed data the
// owner signs; `pair finish` checks the signature and stores the owner.
//
// Expiry: the box made the nonce and the expiry itself, so it checks the expiry on its
// monotonic clock from the moment of `pair start` (PAIRING_TTL_MS). The wall clock only
// fills in the `expires` field for the wallet and the gateway; a box whose wall clock is
// not set (no NTP yet) still pairs, and a clock step during the 15 minutes changes nothing.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../drivers/clock.ts';
import { toHex } from '../codec/hex.ts';
import {
  SignatureError, ZERO_ADDRESS, checksumAddress, isAddress, pairingTypedData, recoverAddress, sameAddress, typedDataDigest,
  type PairingMessage, type TypedData,
} from './eip712.ts';
import type { OwnerRecord, OwnerStore } from './owner-store.ts';

export const PAIRING_TTL_MS = 15 * 60 * 1000;

export type PairingErrorCode =
  | 'BAD_ADDRESS' | 'NO_PAIRING' | 'BAD_SIGNATURE' | 'WRONG_SIGNER' | 'EXPIRED' | 'NONCE_USED';

export class PairingError extends Error {
  override name = 'PairingError';
  readonly code: PairingErrorCode;
  constructor(code: PairingErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

interface Pending {
  typedData: TypedData<PairingMessage>;
  digest: Uint8Array;
  /** Whose signature completes it: the new owner, or the current owner for a change. */
  signer: string;
  startedAt: number;
}

export interface PairingOptions {
  device: string;
  store: OwnerStore;
  clock: Pick<Clock, 'now'>;
  /** Wall clock, milliseconds since 1970 (only for the `expires` field and pairedAt). */
  wallNow?: () => number;
  /** Called once an owner is stored (the agent publishes the claim). */
  onPaired?: (record: OwnerRecord) => void;
}

export class Pairing {
  private pending: Pending | undefined;
  readonly counters = { started: 0, paired: 0, refused: 0 };
  private readonly options: PairingOptions;

  constructor(options: PairingOptions) {
    this.options = options;
  }

  get owner(): string | null {
    return this.options.store.current?.owner ?? null;
  }

  start(owner: string): { typedData: TypedData<PairingMessage>; signer: string; expiresInS: number } {
    if (!isAddress(owner)) throw new PairingError('BAD_ADDRESS', `'${String(owner).slice(0, 50)}' is not an Ethereum address: expected 0x and 40 hex digits`);
    const current = this.owner;
    const wallNow = this.options.wallNow ?? Date.now;
    const message: PairingMessage = {
      device: this.options.device,
      owner: checksumAddress(owner),
      previousOwner: current ?? ZERO_ADDRESS,
      nonce: '0x' + toHex(randomBytes(32)),
      expires: Math.floor((wallNow() + PAIRING_TTL_MS) / 1000),
    };
    const typedData = pairingTypedData(message);
    this.pending = { typedData, digest: typedDataDigest(typedData), signer: current ?? message.owner, startedAt: this.options.clock.now() };
    this.counters.started++;
    return { typedData, signer: this.pending.signer, expiresInS: PAIRING_TTL_MS / 1000 };
  }

  finish(signature: string): OwnerRecord {
    try {
      return this.check(signature.trim());
    } catch (err) {
      this.counters.refused++;
      throw err;
    }
  }

  private check(signature: string): OwnerRecord {
    const { store } = this.options;
    if (/^0x[0-9a-fA-F]{130}$/.test(signature) && store.wasUsed(signature)) {
      throw new PairingError('NONCE_USED', 'this signature was already used: its nonce is spent. Type pair start again and have the owner sign the new data');
    }
    const pending = this.pending;
    if (!pending) throw new PairingError('NO_PAIRING', 'no pairing in progress: type pair start --owner 0x... first');
    let signer: string;
    try {
      signer = recoverAddress(pending.digest, signature);
    } catch (err) {
      throw new PairingError('BAD_SIGNATURE', err instanceof SignatureError ? err.message : 'unreadable signature');
    }
    if (this.options.clock.now() - pending.startedAt > PAIRING_TTL_MS) {
      this.pending = undefined;
      throw new PairingError('EXPIRED', 'the pairing expired (15 minutes after pair start): type pair start again');
    }
    if (!sameAddress(signer, pending.signer)) {
      const who = pending.signer === pending.typedData.message.owner ? 'the new owner' : 'the current owner';
      throw new PairingError('WRONG_SIGNER',
        `signature is not from ${who} ${pending.signer} over this pairing (it recovers to ${signer}): signed by another account, or over other data`);
    }
    const wallNow = this.options.wallNow ?? Date.now;
    const record: OwnerRecord = {
      owner: pending.typedData.message.owner,
      pairedAt: new Date(wallNow()).toISOString(),
      typedData: pending.typedData,
      signature: signature.toLowerCase(),
    };
    store.setOwner(record);
    this.pending = undefined;
    this.counters.paired++;
    this.options.onPaired?.(record);
    return record;
  }

  status(): { owner: string | null; pairedAt: string | null; pending: { owner: string; signer: string; expiresInS: number } | null; counters: Pairing['counters'] } {
    const current = this.options.store.current;
    const pending = this.pending;
    const left = pending ? Math.max(0, Math.round((PAIRING_TTL_MS - (this.options.clock.now() - pending.startedAt)) / 1000)) : 0;
    return {
      owner: current?.owner ?? null,
      pairedAt: current?.pairedAt ?? null,
      pending: pending && left > 0 ? { owner: pending.typedData.message.owner, signer: pending.signer, expiresInS: left } : null,
      counters: { ...this.counters },
    };
  }

  /** Factory reset (the console asks for the device id first). */
  reset(): void {
    this.pending = undefined;
    this.options.store.reset();
  }
}
