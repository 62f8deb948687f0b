// The mesh wire format (docs/mesh.md): one byte of version and kind, a CBOR array,
// and a truncated HMAC-SHA256 under the mesh key. The MAC is checked before a byte of
// the body is decoded, so an outsider's packet costs one hash and changes nothing.
import { Decoder, Encoder } from 'cbor-x';
import { createHmac } from 'node:crypto';

export const VERSION = 1;
export const NODE_ID_BYTES = 6;
export const MAC_BYTES = 12;
export const INFINITE_METRIC = 0xffff;

export type NodeId = Uint8Array;

export type Tlv =
  | { t: 'hello'; seq: number; intervalMs: number }
  | { t: 'ihu'; neighbour: NodeId; rxcost: number }
  | { t: 'update'; source: NodeId; seqno: number; metric: number; uplink: boolean }
  | { t: 'seqreq'; source: NodeId; seqno: number; hops: number }
  | { t: 'routereq' };

interface Header { sender: NodeId; epoch: number; counter: number }

export interface ControlPacket extends Header { kind: 'control'; tlvs: Tlv[] }

/**
 * What a data packet carries: a signed reading toward an uplink, a receipt back, a
 * compression context miss, a box's signed status toward an uplink, or a box's signed
 * contribution report (beacon, witness: docs/rewards.md) toward an uplink, or a relay's
 * notice to an origin that it gave up on messages of it (drop-notices.ts: boxes of
 * earlier versions send it; this one acts on it but sends none).
 */
export type DataType = 'reading' | 'receipt' | 'ctxmiss' | 'status' | 'report' | 'dropped';
const DATA_TYPES: DataType[] = ['reading', 'receipt', 'ctxmiss', 'status', 'report', 'dropped'];

/** Messages for whichever uplink box takes them (the others go to one box). */
export const FOR_ANY_UPLINK: readonly DataType[] = ['reading', 'status', 'report'];
/**
 * Messages that go plain and are no compression reference: a status compresses badly
 * against readings, and as a reference it would make the readings after it compress badly.
 */
export const OUTSIDE_COMPRESSION: readonly DataType[] = ['ctxmiss', 'status', 'report', 'dropped'];

export interface DataPacket extends Header {
  kind: 'data';
  origin: NodeId;
  dest: NodeId;
  msgId: number;
  /** fragment index and count */
  index: number;
  count: number;
  hopLimit: number;
  type: DataType;
  payload: Uint8Array;
}

/** Acknowledges, to the previous hop, the data packet it sent with `acked` as counter. */
export interface AckPacket extends Header { kind: 'ack'; acked: number }

export type Packet = ControlPacket | DataPacket | AckPacket;

const KINDS = ['control', 'data', 'ack'] as const;
const TLV_TAGS = { hello: 0, ihu: 1, update: 2, seqreq: 3, routereq: 4 } as const;

const encoder = new Encoder({ tagUint8Array: false, useRecords: false, variableMapSize: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: false });

export class MeshPacketError extends Error {}

export function macOf(key: Uint8Array, bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(bytes).digest().subarray(0, MAC_BYTES));
}

export function encodePacket(packet: Packet, key: Uint8Array): Uint8Array {
  const head = [packet.sender, packet.epoch, packet.counter];
  let body: unknown[];
  switch (packet.kind) {
    case 'control':
      body = [...head, ...packet.tlvs.map(tlvToArray)];
      break;
    case 'data':
      body = [...head, packet.origin, packet.dest, packet.msgId, packet.index, packet.count, packet.hopLimit, DATA_TYPES.indexOf(packet.type), packet.payload];
      break;
    case 'ack':
      body = [...head, packet.acked];
      break;
  }
  const encoded = encoder.encode(body);
  const out = new Uint8Array(1 + encoded.length + MAC_BYTES);
  out[0] = (VERSION << 4) | KINDS.indexOf(packet.kind);
  out.set(encoded, 1);
  out.set(macOf(key, out.subarray(0, 1 + encoded.length)), 1 + encoded.length);
  return out;
}

/** Checks the MAC, then decodes; throws MeshPacketError saying what is wrong. */
export function decodePacket(bytes: Uint8Array, key: Uint8Array): Packet {
  if (bytes.length < 2 + MAC_BYTES) throw new MeshPacketError(`packet of ${bytes.length} bytes is too short`);
  if (bytes[0]! >> 4 !== VERSION) throw new MeshPacketError(`packet version ${bytes[0]! >> 4} is not ${VERSION}`);
  const kind = KINDS[bytes[0]! & 0x0f];
  if (!kind) throw new MeshPacketError(`packet kind ${bytes[0]! & 0x0f} is unknown`);
  const signed = bytes.subarray(0, bytes.length - MAC_BYTES);
  if (!constantTimeEqual(macOf(key, signed), bytes.subarray(bytes.length - MAC_BYTES))) {
    throw new MeshPacketError('packet MAC does not match the mesh key');
  }
  let body: unknown;
  try {
    body = decoder.decode(signed.subarray(1));
  } catch (err) {
    throw new MeshPacketError(`packet body is not CBOR: ${(err as Error).message}`);
  }
  if (!Array.isArray(body) || body.length < 3) throw new MeshPacketError('packet body is not an array of at least 3 items');
  const head: Header = { sender: nodeId(body[0], 'sender'), epoch: uint(body[1], 'epoch'), counter: uint(body[2], 'counter') };
  switch (kind) {
    case 'control':
      return { kind, ...head, tlvs: body.slice(3).map(tlvFromArray) };
    case 'data': {
      if (body.length !== 11) throw new MeshPacketError(`data packet has ${body.length} items, expected 11`);
      const type = DATA_TYPES[uint(body[9], 'type')];
      if (!type) throw new MeshPacketError(`data type ${String(body[9])} is unknown`);
      const index = uint(body[6], 'fragment index');
      const count = uint(body[7], 'fragment count');
      if (count < 1 || index >= count || count > 64) throw new MeshPacketError(`fragment ${index} of ${count} is not valid`);
      return {
        kind, ...head, origin: nodeId(body[3], 'origin'), dest: nodeId(body[4], 'dest'), msgId: uint(body[5], 'message id'),
        index, count, hopLimit: uint(body[8], 'hop limit'), type, payload: bstr(body[10], 'payload'),
      };
    }
    case 'ack':
      if (body.length !== 4) throw new MeshPacketError(`ack packet has ${body.length} items, expected 4`);
      return { kind, ...head, acked: uint(body[3], 'acked counter') };
  }
}

function tlvToArray(tlv: Tlv): unknown[] {
  switch (tlv.t) {
    case 'hello': return [TLV_TAGS.hello, tlv.seq, Math.round(tlv.intervalMs / 10)];
    case 'ihu': return [TLV_TAGS.ihu, tlv.neighbour, tlv.rxcost];
    case 'update': return [TLV_TAGS.update, tlv.source, tlv.seqno, tlv.metric, tlv.uplink ? 1 : 0];
    case 'seqreq': return [TLV_TAGS.seqreq, tlv.source, tlv.seqno, tlv.hops];
    case 'routereq': return [TLV_TAGS.routereq];
  }
}

function tlvFromArray(item: unknown): Tlv {
  if (!Array.isArray(item) || item.length === 0) throw new MeshPacketError('TLV is not a non-empty array');
  const want = (n: number, name: string) => {
    if (item.length !== n) throw new MeshPacketError(`${name} TLV has ${item.length} items, expected ${n}`);
  };
  switch (item[0]) {
    case TLV_TAGS.hello:
      want(3, 'hello');
      return { t: 'hello', seq: u16(item[1], 'hello seq'), intervalMs: uint(item[2], 'hello interval') * 10 };
    case TLV_TAGS.ihu:
      want(3, 'ihu');
      return { t: 'ihu', neighbour: nodeId(item[1], 'ihu neighbour'), rxcost: u16(item[2], 'ihu rxcost') };
    case TLV_TAGS.update:
      want(5, 'update');
      return { t: 'update', source: nodeId(item[1], 'update source'), seqno: u16(item[2], 'update seqno'), metric: u16(item[3], 'update metric'), uplink: uint(item[4], 'update flags') === 1 };
    case TLV_TAGS.seqreq:
      want(4, 'seqreq');
      return { t: 'seqreq', source: nodeId(item[1], 'seqreq source'), seqno: u16(item[2], 'seqreq seqno'), hops: uint(item[3], 'seqreq hops') };
    case TLV_TAGS.routereq:
      want(1, 'routereq');
      return { t: 'routereq' };
    default:
      throw new MeshPacketError(`TLV type ${String(item[0])} is unknown`);
  }
}

function uint(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new MeshPacketError(`${name} is not an unsigned integer`);
  return value;
}

function u16(value: unknown, name: string): number {
  const n = uint(value, name);
  if (n > 0xffff) throw new MeshPacketError(`${name} ${n} does not fit 16 bits`);
  return n;
}

function bstr(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new MeshPacketError(`${name} is not a byte string`);
  return value;
}

function nodeId(value: unknown, name: string): NodeId {
  const bytes = bstr(value, name);
  if (bytes.length !== NODE_ID_BYTES) throw new MeshPacketError(`${name} is ${bytes.length} bytes, expected ${NODE_ID_BYTES}`);
  return bytes;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function nodeIdHex(id: NodeId): string {
  let s = '';
  for (const b of id) s += b.toString(16).padStart(2, '0');
  return s;
}

export function nodeIdFromHex(hex: string): NodeId {
  const out = new Uint8Array(NODE_ID_BYTES);
  for (let i = 0; i < NODE_ID_BYTES; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
