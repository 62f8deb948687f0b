// End-to-end compression of mesh messages. Consecutive readings of a box differ in a few
// values, its sequence number and its signature: deflated against an earlier reading a
// 290-byte signed reading takes about 110 to 140 bytes, one LoRa frame instead of two.
// A box compresses against the newest message its peer confirmed holding (every message
// back names the last one received), or before any confirmation against the last one
// it sent; a peer that lacks the reference (a message lost, a restart) says so and the
// message goes again uncompressed. Format: docs/mesh.md, section 6.1.
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { MeshPacketError } from './packet.ts';

export const CODING_PLAIN = 0;
export const CODING_DEFLATE = 1;
const CODING_MASK = 0x03;
const HAS_CONFIRMATION = 0x80;
const ID_BYTES = 4;
/** distinct messages sent to a peer kept as possible references */
const SENT_KEPT = 8;
/** messages received from a peer kept as references (besides the ones confirmed to it) */
const RECEIVED_KEPT = 4;
const CONFIRMED_KEPT = 2;
const MAX_PEERS = 1024;
/** no mesh message is larger: a bigger expansion is an attack, not a reading */
export const MAX_MESSAGE_BYTES = 16 * 1024;

interface Reference {
  id: number;
  dictionary: Uint8Array;
}

function referenceOf(message: Uint8Array): Reference {
  const digest = createHash('sha256').update(message).digest();
  const dictionary = new Uint8Array(message.length + digest.length);
  dictionary.set(message);
  dictionary.set(digest, message.length);
  return { id: digest.readUInt32BE(0), dictionary };
}

interface Peer {
  sent: Reference[];
  /** the newest of our messages the peer says it holds */
  confirmedByPeer: number | undefined;
  received: Reference[];
  /** references we named to the peer as held: kept until newer ones are named */
  confirmedToPeer: Reference[];
}

export type Expanded = { message: Uint8Array; compressed: boolean } | { missingReference: number };

export class MessageCodec {
  private readonly peers = new Map<string, Peer>();

  private peer(key: string): Peer {
    let p = this.peers.get(key);
    if (p) {
      this.peers.delete(key);
    } else {
      p = { sent: [], confirmedByPeer: undefined, received: [], confirmedToPeer: [] };
      if (this.peers.size >= MAX_PEERS) this.peers.delete(this.peers.keys().next().value!);
    }
    this.peers.set(key, p);
    return p;
  }

  /** The message as it goes on the wire (its envelope); `plain` when the peer lacks our reference. */
  encode(peerKey: string, message: Uint8Array, plain = false): Uint8Array {
    const p = this.peer(peerKey);
    const sent = referenceOf(message);
    // Against the newest message the peer confirmed; lacking one, against the newest other
    // message we sent it: most arrive, and waiting for a confirmation (a receipt held for
    // minutes) sent every reading meanwhile plain, two frames instead of one. A peer that
    // lacks it says so (ctxmiss) and gets this message, and those sent after it, again plain.
    const ref = plain ? undefined : p.sent.find((r) => r.id === p.confirmedByPeer) ?? p.sent.find((r) => r.id !== sent.id);
    if (plain) p.confirmedByPeer = undefined;
    // A message sent again (the origin's resends) moves to the front instead of taking
    // another place: resends must not push out the older message the peer will confirm.
    p.sent = [sent, ...p.sent.filter((r) => r.id !== sent.id)].slice(0, SENT_KEPT);
    // Confirm the newest message we hold from the peer, and keep it until we confirm a newer.
    const confirm = p.received[0];
    if (confirm && p.confirmedToPeer[0]?.id !== confirm.id) {
      p.confirmedToPeer.unshift(confirm);
      p.confirmedToPeer.length = Math.min(p.confirmedToPeer.length, CONFIRMED_KEPT);
    }
    let body: Uint8Array = message;
    let coding = CODING_PLAIN;
    if (ref) {
      const deflated = deflateRawSync(message, { dictionary: ref.dictionary, level: 9, memLevel: 9 });
      if (deflated.length + ID_BYTES < message.length) {
        body = deflated;
        coding = CODING_DEFLATE;
      }
    }
    const head = 1 + (confirm ? ID_BYTES : 0) + (coding === CODING_DEFLATE ? ID_BYTES : 0);
    const out = new Uint8Array(head + body.length);
    const view = new DataView(out.buffer);
    out[0] = coding | (confirm ? HAS_CONFIRMATION : 0);
    let offset = 1;
    if (confirm) {
      view.setUint32(offset, confirm.id);
      offset += ID_BYTES;
    }
    if (coding === CODING_DEFLATE) {
      view.setUint32(offset, ref!.id);
      offset += ID_BYTES;
    }
    out.set(body, offset);
    return out;
  }

  /** Throws MeshPacketError for an envelope that cannot be valid. */
  decode(peerKey: string, envelope: Uint8Array): Expanded {
    if (envelope.length < 1) throw new MeshPacketError('message envelope is empty');
    const flags = envelope[0]!;
    const coding = flags & CODING_MASK;
    if ((flags & ~(CODING_MASK | HAS_CONFIRMATION)) !== 0 || coding > CODING_DEFLATE) throw new MeshPacketError(`message envelope flags 0x${flags.toString(16)} are unknown`);
    const view = new DataView(envelope.buffer, envelope.byteOffset, envelope.byteLength);
    let offset = 1;
    let confirmed: number | undefined;
    if (flags & HAS_CONFIRMATION) {
      if (envelope.length < offset + ID_BYTES) throw new MeshPacketError('message envelope is cut short in its confirmation');
      confirmed = view.getUint32(offset);
      offset += ID_BYTES;
    }
    const p = this.peer(peerKey);
    let message: Uint8Array;
    if (coding === CODING_DEFLATE) {
      if (envelope.length < offset + ID_BYTES + 1) throw new MeshPacketError(`compressed message of ${envelope.length} bytes is too short`);
      const id = view.getUint32(offset);
      offset += ID_BYTES;
      const ref = p.confirmedToPeer.find((r) => r.id === id) ?? p.received.find((r) => r.id === id);
      if (!ref) return { missingReference: id };
      try {
        message = new Uint8Array(inflateRawSync(envelope.subarray(offset), { dictionary: ref.dictionary, maxOutputLength: MAX_MESSAGE_BYTES }));
      } catch (err) {
        throw new MeshPacketError(`compressed message does not inflate: ${(err as Error).message}`);
      }
    } else {
      message = envelope.subarray(offset);
    }
    if (confirmed !== undefined && p.sent.some((r) => r.id === confirmed)) p.confirmedByPeer = confirmed;
    const ref = referenceOf(message);
    if (!p.received.some((r) => r.id === ref.id)) {
      p.received.unshift(ref);
      p.received.length = Math.min(p.received.length, RECEIVED_KEPT);
    }
    return { message, compressed: coding === CODING_DEFLATE };
  }
}

/**
 * The envelope of `message` deflated against `reference` (coding 1, no confirmation), or
 * plain when that is not smaller: what a sender that trusted its peer to hold the
 * reference would send. The simulator's flooding baseline uses it.
 */
export function envelopeAgainst(reference: Uint8Array, message: Uint8Array): Uint8Array {
  const ref = referenceOf(reference);
  const deflated = deflateRawSync(message, { dictionary: ref.dictionary, level: 9, memLevel: 9 });
  if (deflated.length + ID_BYTES >= message.length) return plainEnvelope(message);
  const out = new Uint8Array(1 + ID_BYTES + deflated.length);
  out[0] = CODING_DEFLATE;
  new DataView(out.buffer).setUint32(1, ref.id);
  out.set(deflated, 1 + ID_BYTES);
  return out;
}

/** A message that takes no part in compression (a request to send one again). */
export function plainEnvelope(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + message.length);
  out[0] = CODING_PLAIN;
  out.set(message, 1);
  return out;
}

export function openPlainEnvelope(envelope: Uint8Array): Uint8Array {
  if (envelope.length < 1 || envelope[0] !== CODING_PLAIN) throw new MeshPacketError('expected an uncompressed message envelope');
  return envelope.subarray(1);
}
