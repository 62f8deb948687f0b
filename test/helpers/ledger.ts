// Chained readings of one device for the anchoring ledgers' tests (SQLite and PostgreSQL).
import { randomBytes } from 'node:crypto';
import type { IncomingReading } from '../../agent/gateway/store.ts';

export const LEDGER_DEVICE = 'a2tdnn5e6ngwhoqrykaogfqgrifxoqpsyqnp2rqu4eljyych2alii';

export function chainedReadings(count: number, firstSeq: number, prev: Uint8Array, receivedMs: (i: number) => number, device = LEDGER_DEVICE): IncomingReading[] {
  const out: IncomingReading[] = [];
  for (let i = 0; i < count; i++) {
    const hash = randomBytes(32);
    out.push({ device, seq: firstSeq + i, hash, prev, message: hash, receivedMs: receivedMs(i) });
    prev = hash;
  }
  return out;
}
