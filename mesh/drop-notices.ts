// End-to-end loss notices (docs/mesh.md, section 6.2). A relay that gives up on a reading
// (every try unanswered, no route for its whole hold, its queue full, its hop limit spent)
// tells the reading's origin, along the reverse route the reading came by, so the origin
// sends it again within seconds instead of at its receipt timeout (15 minutes on LoRa).
// Notices to one origin are gathered for a moment and go as one small message, and at
// most one per origin per pause, a pause that doubles while drops keep coming: a
// congested relay that drops many frames must not add a frame back for each, nor bring
// their origins to send into the congestion again and again.
import type { Clock, TimerHandle } from '../drivers/clock.ts';
import { MeshPacketError, nodeIdHex, type NodeId } from './packet.ts';

/** message ids one notice names at most */
export const MAX_NOTICE_IDS = 16;
const ID_BYTES = 4;
/** origins with notices waiting, at most (a relay near an uplink carries for many) */
const MAX_ORIGINS = 256;
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

export interface DropNoticesHost {
  clock: Clock;
  /** the shortest pause between two notices to one origin (it doubles while drops continue); the first waits a quarter of it to gather others */
  pauseMs: number;
  /** sends the notice; false if there is no route to the origin now (the notice is then given up) */
  send(origin: NodeId, payload: Uint8Array): boolean;
}

export class DropNotices {
  private readonly host: DropNoticesHost;
  private readonly waiting = new Map<string, { origin: NodeId; ids: Set<number>; timer: TimerHandle }>();
  /** per origin: when the next notice may go, and the pause after it */
  private readonly paced = new Map<string, { notBefore: number; pause: DoublingPause }>();

  constructor(host: DropNoticesHost) {
    this.host = host;
  }

  /** This relay gave up on message `msgId` of `origin`. */
  dropped(origin: NodeId, msgId: number): void {
    const originHex = nodeIdHex(origin);
    const entry = this.waiting.get(originHex);
    if (entry) {
      if (entry.ids.size < MAX_NOTICE_IDS) entry.ids.add(msgId);
      return;
    }
    if (this.waiting.size >= MAX_ORIGINS) return;
    const now = this.host.clock.now();
    const wait = Math.max(this.host.pauseMs / 4, (this.paced.get(originHex)?.notBefore ?? 0) - now);
    const timer = this.host.clock.setTimeout(() => this.flush(originHex), wait);
    this.waiting.set(originHex, { origin, ids: new Set([msgId]), timer });
  }

  stop(): void {
    for (const { timer } of this.waiting.values()) this.host.clock.clearTimeout(timer);
    this.waiting.clear();
  }

  private flush(originHex: string): void {
    const entry = this.waiting.get(originHex);
    if (!entry) return;
    this.waiting.delete(originHex);
    const now = this.host.clock.now();
    const paced = this.paced.get(originHex) ?? { notBefore: 0, pause: new DoublingPause(this.host.pauseMs) };
    this.paced.delete(originHex);
    paced.notBefore = now + paced.pause.next(now);
    this.paced.set(originHex, paced);
    if (this.paced.size > MAX_ORIGINS) this.paced.delete(this.paced.keys().next().value!);
    this.host.send(entry.origin, encodeNotice([...entry.ids]));
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
