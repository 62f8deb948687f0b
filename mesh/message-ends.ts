// The two ends of a mesh message, above the hops: the sender compresses a reading against
// what the destination confirmed (compression.ts) and keeps it a while, to send it again
// uncompressed when the destination says it lacks the reference (a `ctxmiss`); the
// destination expands what arrives, or asks for it again, and delivers it. A relay that
// gave up on a message says so (drop-notices.ts): the sender sends it again, a few times.
import type { Clock } from '../drivers/clock.ts';
import { MessageCodec, openPlainEnvelope, plainEnvelope } from './compression.ts';
import { decodeNotice, DoublingPause } from './drop-notices.ts';
import { FOR_ANY_UPLINK, MeshPacketError, nodeIdHex, OUTSIDE_COMPRESSION, type DataPacket, type DataType, type NodeId } from './packet.ts';
import type { MeshCounters, MeshLogger, MeshMessage } from './types.ts';

/** messages kept for sending again uncompressed when their destination lacks the reference */
const SENT_KEPT = 32;
/** tries of a ctxmiss that finds no route to the origin (right after a restart, before hellos) */
const CTXMISS_TRIES = 8;
/** a ctxmiss holds off the next to the same origin for this many retry pauses */
const ASKED_HOLD_RETRIES = 4;
/** times one message is sent again on drop notices: past that, the origin's own timeout (a receipt's) takes over */
const MAX_AGAIN_ON_NOTICE = 2;

export interface MessageEndsHost {
  clock: Clock;
  /** the pause before a ctxmiss that found no route tries again; a message a relay dropped goes again after 1-2 of these */
  retryMs: number;
  random: () => number;
  counters: MeshCounters;
  log?: MeshLogger;
  deliver(message: MeshMessage): void;
  /** sends a message (uncompressed if `plain`); false if there is no route to `dest` now */
  send(dest: NodeId, type: DataType, payload: Uint8Array, plain: boolean): boolean;
  /** sends a message a relay dropped again, by the way that is best now (a reading: to the best uplink) */
  sendAgain(message: { dest: NodeId; type: DataType; payload: Uint8Array }): void;
}

export class MessageEnds {
  private readonly host: MessageEndsHost;
  private readonly codec = new MessageCodec();
  private readonly sent = new Map<number, { dest: NodeId; type: DataType; payload: Uint8Array; at: number; again: number }>();
  /** how often the message now being sent was sent again on drop notices before */
  private againNow = 0;
  /** messages sent again on notices are spaced by a pause that doubles while notices keep coming */
  private readonly againPause: DoublingPause;
  private nextAgainAt = 0;
  /** when we last asked each origin for a message again */
  private readonly asked = new Map<string, number>();

  constructor(host: MessageEndsHost) {
    this.host = host;
    this.againPause = new DoublingPause(host.retryMs);
  }

  /** The envelope message `msgId` travels in: compressed against the destination's reference unless `plain`. */
  envelope(msgId: number, dest: NodeId, destHex: string, type: DataType, payload: Uint8Array, plain: boolean): Uint8Array {
    if (OUTSIDE_COMPRESSION.includes(type)) return plainEnvelope(payload);
    this.sent.set(msgId, { dest, type, payload, at: this.host.clock.now(), again: this.againNow });
    if (this.sent.size > SENT_KEPT) this.sent.delete(this.sent.keys().next().value!);
    return this.codec.encode(destHex, payload, plain);
  }

  /** A whole message for this box: expanded, or (lacking its reference) asked for again. */
  arrived(packet: DataPacket, originHex: string, envelope: Uint8Array): void {
    if (packet.type === 'ctxmiss') return this.resendPlain(envelope, packet.origin);
    if (packet.type === 'dropped') return this.resendDropped(envelope, originHex);
    if (packet.type === 'status' || packet.type === 'report') {
      const message = this.open(envelope, `a ${packet.type} message from ${originHex}`);
      if (message) this.deliver(packet, originHex, message, false);
      return;
    }
    let expanded;
    try {
      expanded = this.codec.decode(originHex, envelope);
    } catch (err) {
      this.malformed(`a ${packet.type} message from ${originHex}`, err);
      return;
    }
    if ('missingReference' in expanded) {
      const ask = new Uint8Array(4);
      new DataView(ask.buffer).setUint32(0, packet.msgId);
      // The origin sends again what it sent after the message asked for (those lack their
      // reference too): one ctxmiss per origin a while, not one per message in flight.
      const now = this.host.clock.now();
      if ((this.asked.get(originHex) ?? -Infinity) > now - ASKED_HOLD_RETRIES * this.host.retryMs) return;
      this.asked.set(originHex, now);
      if (this.asked.size > SENT_KEPT) this.asked.delete(this.asked.keys().next().value!);
      this.askAgain(packet.origin, ask, CTXMISS_TRIES);
      return;
    }
    this.deliver(packet, originHex, expanded.message, expanded.compressed);
  }

  /** A box that just restarted knows no neighbour yet: its ctxmiss waits for a route. */
  private askAgain(origin: NodeId, ask: Uint8Array, tries: number): void {
    if (this.host.send(origin, 'ctxmiss', ask, false) || tries <= 1) return;
    this.host.clock.setTimeout(() => this.askAgain(origin, ask, tries - 1), this.host.retryMs);
  }

  private deliver(packet: DataPacket, originHex: string, payload: Uint8Array, compressed: boolean): void {
    this.host.counters.delivered++;
    this.host.deliver({ type: packet.type, origin: packet.origin, originHex, payload, compressed });
  }

  /**
   * A box lacked the reference of a message we sent: send it again uncompressed, to that
   * box, and the ones we sent its way after it (compressed against it or its successors,
   * they lack their reference too). A reading is for any uplink, and the one that asked
   * may not be the one we chose: a relay of an earlier version with no way to ours passed
   * the reading to its own. Sent to ours again, it would take the same broken way.
   */
  private resendPlain(envelope: Uint8Array, asker: NodeId): void {
    const ask = this.open(envelope, 'a ctxmiss');
    if (!ask) return;
    if (ask.length !== 4) return this.malformed('a ctxmiss', new MeshPacketError(`ctxmiss of ${ask.length} bytes, expected a 4-byte message id`));
    const msgId = new DataView(ask.buffer, ask.byteOffset).getUint32(0);
    const original = this.sent.get(msgId);
    if (!original) return;
    // Only those sent lately: the asker stays silent about them for a while (above); older
    // ones have long arrived or been asked for.
    const since = this.host.clock.now() - ASKED_HOLD_RETRIES * this.host.retryMs;
    const sameWay = (m: { dest: NodeId; type: DataType }) => nodeIdHex(m.dest) === nodeIdHex(original.dest) && FOR_ANY_UPLINK.includes(m.type) === FOR_ANY_UPLINK.includes(original.type);
    const again = [...this.sent].filter(([id, m]) => id === msgId || (((id - msgId) >>> 0) < 0x8000_0000 && m.at >= since && sameWay(m)));
    for (const [id] of again) this.sent.delete(id);
    for (const [, m] of again) {
      const toAsker = FOR_ANY_UPLINK.includes(m.type) && this.host.send(asker, m.type, m.payload, true);
      if (!toAsker) this.host.send(m.dest, m.type, m.payload, true);
    }
  }

  /**
   * A relay gave up on messages we sent: send each again (at most MAX_AGAIN_ON_NOTICE
   * times), after a pause of 1-2 retry intervals with jitter, so that what made the
   * relay give up (a burst, a route being repaired) has a moment to pass; while notices
   * keep coming (congestion), the ones sent again are spaced further and further apart.
   */
  private resendDropped(envelope: Uint8Array, relayHex: string): void {
    const body = this.open(envelope, `a drop notice from ${relayHex}`);
    if (!body) return;
    let ids: number[];
    try {
      ids = decodeNotice(body);
    } catch (err) {
      return this.malformed(`a drop notice from ${relayHex}`, err);
    }
    for (const id of ids) {
      const m = this.sent.get(id);
      if (!m || m.again >= MAX_AGAIN_ON_NOTICE) continue;
      this.sent.delete(id);
      this.host.counters.resentOnNotice++;
      const now = this.host.clock.now();
      const at = Math.max(now + this.host.retryMs * (1 + this.host.random()), this.nextAgainAt);
      this.nextAgainAt = at + this.againPause.next(now);
      this.host.clock.setTimeout(() => {
        this.againNow = m.again + 1;
        try {
          this.host.sendAgain(m);
        } finally {
          this.againNow = 0;
        }
      }, at - now);
    }
  }

  private open(envelope: Uint8Array, what: string): Uint8Array | undefined {
    try {
      return openPlainEnvelope(envelope);
    } catch (err) {
      this.malformed(what, err);
      return undefined;
    }
  }

  private malformed(what: string, err: unknown): void {
    this.host.counters.rejected.malformed++;
    this.host.log?.debug(`dropped ${what}: ${(err as Error).message}`);
  }
}
