// The two ends of a mesh message, above the hops: the sender compresses a reading against
// what the destination confirmed (compression.ts) and keeps it a while, to send it again
// uncompressed when the destination says it lacks the reference (a `ctxmiss`); the
// destination expands what arrives, or asks for it again, and delivers it.
import { MessageCodec, openPlainEnvelope, plainEnvelope } from './compression.ts';
import { MeshPacketError, OUTSIDE_COMPRESSION, type DataPacket, type DataType, type NodeId } from './packet.ts';
import type { MeshCounters, MeshLogger, MeshMessage } from './types.ts';

/** messages kept for sending again uncompressed when their destination lacks the reference */
const SENT_KEPT = 32;

export interface MessageEndsHost {
  counters: MeshCounters;
  log?: MeshLogger;
  deliver(message: MeshMessage): void;
  /** sends a message (uncompressed if `plain`) */
  send(dest: NodeId, type: DataType, payload: Uint8Array, plain: boolean): void;
}

export class MessageEnds {
  private readonly host: MessageEndsHost;
  private readonly codec = new MessageCodec();
  private readonly sent = new Map<number, { dest: NodeId; type: DataType; payload: Uint8Array }>();

  constructor(host: MessageEndsHost) {
    this.host = host;
  }

  /** The envelope message `msgId` travels in: compressed against the destination's reference unless `plain`. */
  envelope(msgId: number, dest: NodeId, destHex: string, type: DataType, payload: Uint8Array, plain: boolean): Uint8Array {
    if (OUTSIDE_COMPRESSION.includes(type)) return plainEnvelope(payload);
    this.sent.set(msgId, { dest, type, payload });
    if (this.sent.size > SENT_KEPT) this.sent.delete(this.sent.keys().next().value!);
    return this.codec.encode(destHex, payload, plain);
  }

  /** A whole message for this box: expanded, or (lacking its reference) asked for again. */
  arrived(packet: DataPacket, originHex: string, envelope: Uint8Array): void {
    if (packet.type === 'ctxmiss') return this.resendPlain(envelope);
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
      this.host.send(packet.origin, 'ctxmiss', ask, false);
      return;
    }
    this.deliver(packet, originHex, expanded.message, expanded.compressed);
  }

  private deliver(packet: DataPacket, originHex: string, payload: Uint8Array, compressed: boolean): void {
    this.host.counters.delivered++;
    this.host.deliver({ type: packet.type, origin: packet.origin, originHex, payload, compressed });
  }

  /** The destination of a message we sent lacked its reference: send it again uncompressed. */
  private resendPlain(envelope: Uint8Array): void {
    const ask = this.open(envelope, 'a ctxmiss');
    if (!ask) return;
    if (ask.length !== 4) return this.malformed('a ctxmiss', new MeshPacketError(`ctxmiss of ${ask.length} bytes, expected a 4-byte message id`));
    const msgId = new DataView(ask.buffer, ask.byteOffset).getUint32(0);
    const original = this.sent.get(msgId);
    if (!original) return;
    this.sent.delete(msgId);
    this.host.send(original.dest, original.type, original.payload, true);
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
