// End-to-end loss notices (docs/mesh.md, section 6.2). A relay that gives up on a reading
// (every try unanswered, no route for its whole hold, its queue full, its hop limit spent)
// tells the reading's origin, along the reverse route the reading came by, so the origin
// sends it again within seconds instead of at its receipt timeout (15 minutes on LoRa).
// Notices to one origin are gathered for a moment and go as one small message, and at
// most one per origin per pause: a congested relay that drops many frames must not add a
// frame back for each.
import type { Clock, TimerHandle } from '../drivers/clock.ts';
import { MeshPacketError, nodeIdHex, type NodeId } from './packet.ts';

/** message ids one notice names at most */
export const MAX_NOTICE_IDS = 16;
const ID_BYTES = 4;
/** origins with notices waiting, at most (a relay near an uplink carries for many) */
const MAX_ORIGINS = 256;

export interface DropNoticesHost {
  clock: Clock;
  /** the least pause between two notices to one origin; the first waits a quarter of it to gather others */
  pauseMs: number;
  /** sends the notice; false if there is no route to the origin now (the notice is then given up) */
  send(origin: NodeId, payload: Uint8Array): boolean;
}

export class DropNotices {
  private readonly host: DropNoticesHost;
  private readonly waiting = new Map<string, { origin: NodeId; ids: Set<number>; timer: TimerHandle }>();
  /** when the last notice went to each origin */
  private readonly lastSent = new Map<string, number>();

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
    const since = now - (this.lastSent.get(originHex) ?? -Infinity);
    const wait = Math.max(this.host.pauseMs / 4, this.host.pauseMs - since);
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
    this.lastSent.delete(originHex);
    this.lastSent.set(originHex, this.host.clock.now());
    if (this.lastSent.size > MAX_ORIGINS) this.lastSent.delete(this.lastSent.keys().next().value!);
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
