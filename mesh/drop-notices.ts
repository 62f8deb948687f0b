// End-to-end loss notices (docs/mesh.md, section 6.2): the message ids a relay gave up on,
// which boxes of earlier versions send to the messages' origin when a reading or receipt
// meets its hop limit. This version sends none (on a congested radio mesh the notices and
// the messages sent again on them cost more airtime than they recovered) but still acts
// on them: an origin sends a message named in one again, a few times, paced by a pause
// that doubles while notices keep coming (message-ends.ts).
import { MeshPacketError } from './packet.ts';

/** message ids one notice names at most */
export const MAX_NOTICE_IDS = 16;
const ID_BYTES = 4;
/** a pause doubles up to this many times its shortest, and starts again after a quiet spell that long */
const MAX_DOUBLINGS = 6;

/**
 * A pause between events that doubles while they keep coming (within the longest pause
 * of each other) and starts again from the shortest after a quiet spell: on a radio
 * mesh, losses that keep coming mean congestion, which more traffic makes worse.
 */
export class DoublingPause {
  private readonly shortestMs: number;
  private readonly longestMs: number;
  private pauseMs: number;
  private last = -Infinity;

  constructor(shortestMs: number) {
    this.shortestMs = shortestMs;
    this.longestMs = shortestMs * 2 ** MAX_DOUBLINGS;
    this.pauseMs = shortestMs;
  }

  /** An event now: the pause to keep after it. */
  next(now: number): number {
    this.pauseMs = now - this.last > this.longestMs ? this.shortestMs : Math.min(this.longestMs, this.pauseMs * 2);
    this.last = now;
    return this.pauseMs;
  }
}

/** A notice's payload: the message ids, 4 bytes each, big-endian. */
export function encodeNotice(ids: number[]): Uint8Array {
  const out = new Uint8Array(ids.length * ID_BYTES);
  const view = new DataView(out.buffer);
  ids.forEach((id, i) => view.setUint32(i * ID_BYTES, id));
  return out;
}

export function decodeNotice(payload: Uint8Array): number[] {
  if (payload.length === 0 || payload.length % ID_BYTES !== 0 || payload.length > MAX_NOTICE_IDS * ID_BYTES) {
    throw new MeshPacketError(`drop notice of ${payload.length} bytes, expected 1 to ${MAX_NOTICE_IDS} message ids of 4 bytes`);
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return Array.from({ length: payload.length / ID_BYTES }, (_, i) => view.getUint32(i * ID_BYTES));
}
