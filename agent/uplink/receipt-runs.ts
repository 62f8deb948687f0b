// Which runs of a gateway receipt may free readings on this box: each run checked against
// the box's own chain. A run's last hash vouches for the whole run (the gateway holds
// only linked runs), so it is compared with this box's hash at that seq: from the reading
// itself, the head, or the prev of the reading after it. A run this box cannot check
// frees nothing; a run that names another message rejects the receipt.
import { bytesEqual } from '../codec/hex.ts';
import { messageHash, type ChainLink } from '../codec/chain.ts';
import { parseSign1 } from '../codec/cose.ts';
import type { ReceiptRange, VerifiedReceipt } from '../codec/receipt.ts';
import type { ReadingQueue } from '../store/reading-queue.ts';

/** The runs that may free readings, or why the receipt is rejected; `kept` says which runs were left alone and why. */
export function coveredRanges(receipt: VerifiedReceipt, head: ChainLink, journal: ReadingQueue): { kept: string[] } & ({ covered: ReceiptRange[] } | { rejected: string }) {
  const covered: ReceiptRange[] = [];
  const kept: string[] = [];
  for (const range of receipt.ranges) {
    const held = journal.firstFrom(range.first);
    if (held === undefined || held > range.last) continue; // nothing of it left here
    const own = ownHash(range.last, head, journal);
    if (!own) {
      kept.push(`receipt run ${range.first}..${range.last}: this box no longer has seq ${range.last} to check it against; keeping its readings`);
      continue;
    }
    if (!bytesEqual(own, range.hash)) return { kept, rejected: `receipt for seq ${range.last} names another message than this box sent: ignored` };
    covered.push(range);
  }
  return { covered, kept };
}

/** This box's hash of its reading `seq`, if it can still tell. */
function ownHash(seq: number, head: ChainLink, journal: ReadingQueue): Uint8Array | undefined {
  if (seq === head.seq) return head.hash;
  const own = journal.get(seq);
  if (own) return messageHash(own.bytes);
  const after = journal.get(seq + 1);
  return after ? parseSign1(after.bytes).header.prev : undefined;
}
