// The seqno a box numbers its own route announcements with (docs/mesh.md section 5),
// kept within what its store has reserved so that a restart never announces below what
// relays may remember.
import { seqNewer } from './routes.ts';

/** seqnos reserved in the store at a time: one durable write per this many announcements */
export const SEQNO_BLOCK = 64;

/**
 * Where a box keeps its route seqno across restarts (the agent: `<state dir>/mesh-seqno`).
 * The box never announces a seqno beyond the last `reserve`d one, so that after a
 * restart it starts above everything relays may remember, and they take its first
 * announcement as fresh instead of waiting minutes for their routes to expire.
 */
export interface SeqnoStore {
  /** the last value passed to reserve() before this start (0 if none) */
  start(): number;
  /** store durably, before returning, that seqnos up to `upTo` may be in use */
  reserve(upTo: number): void;
}

export class OwnSeqno {
  private seqno = 0;
  private readonly store: SeqnoStore | undefined;
  /** the highest seqno the store allows without another write */
  private reserved = 0;

  /** Without a store the seqno starts from 0 at every start. */
  constructor(store: SeqnoStore | undefined) {
    this.store = store;
    if (store) {
      this.seqno = store.start() & 0xffff;
      this.reserved = (this.seqno + SEQNO_BLOCK) & 0xffff;
      store.reserve(this.reserved);
    }
  }

  get value(): number {
    return this.seqno;
  }

  /** Every change goes through here: it stays within what the store reserved. */
  set(seqno: number): void {
    if (this.store && !seqNewer(this.reserved, seqno)) {
      this.reserved = (seqno + SEQNO_BLOCK) & 0xffff;
      this.store.reserve(this.reserved);
    }
    this.seqno = seqno;
  }

  next(): void {
    this.set((this.seqno + 1) & 0xffff);
  }
}
