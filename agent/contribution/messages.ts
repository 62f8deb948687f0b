// Beacons, witness reports and relay attestations (docs/rewards.md, section 2): small
// COSE_Sign1 messages signed by the device key, with a CBOR map as payload whose key 0
// names the kind. They use no Node-only API, so the gateway, the simulator and any
// other verifier share this one codec.
import { sha256 } from '@noble/hashes/sha2.js';
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { CoseError, HEADER, encodeSign1, parseSign1Parts, safeInteger, sigStructure, type SignFunction } from '../codec/cose.ts';
import { identityFromKid, type DeviceIdentity } from '../codec/identity.ts';

/** CoAP Content-Format of application/cbor. */
export const CONTENT_FORMAT_CBOR = 60;
/** First byte of a beacon on a radio: its high nibble (0xB) is never a mesh packet's version. */
export const BEACON_FRAME_MAGIC = 0xb1;
export const BEACON_ID_BYTES = 16;
/** Bytes of the beaconer's kid a witness names it by (the beacon id already binds the beacon; this keeps a witness in one LoRa fragment). */
export const BEACONER_BYTES = 8;
/** Bytes of a reading's SHA-256 a relay attestation names per reading. */
export const RELAY_HASH_BYTES = 8;

export const KIND = { beacon: 1, witness: 2, relay: 3 } as const;

export interface Beacon {
  /** Unix seconds by the beaconer's clock when it went on air */
  time: number;
  nonce: Uint8Array;
  region: string;
  frequencyHz: number;
  /** transmit power plus antenna gain, dBm */
  eirpDbm: number;
}

export interface Witness {
  beaconId: Uint8Array;
  /** the first BEACONER_BYTES of the kid of the box whose beacon this was */
  beaconer: Uint8Array;
  /** Unix seconds by the witness's clock */
  receivedAt: number;
  rssi: number;
  snr: number;
  frequencyHz: number;
  /** the link it came in on ("sim", "kiss:/dev/ttyUSB0", ...) */
  link: string;
  region: string;
}

export interface RelayAttestation {
  /** kid of the box whose readings were relayed */
  origin: Uint8Array;
  firstSeq: number;
  /** per seq from firstSeq: the first RELAY_HASH_BYTES of the reading's SHA-256, or empty when not carried */
  hashes: Uint8Array[];
  /** Unix seconds when the batch was closed */
  time: number;
}

export type ContributionMessage =
  | { kind: 'beacon'; body: Beacon }
  | { kind: 'witness'; body: Witness }
  | { kind: 'relay'; body: RelayAttestation };

export interface OpenedMessage<M extends ContributionMessage = ContributionMessage> {
  signer: DeviceIdentity;
  message: M;
  /** whether the signature holds */
  valid: boolean;
  /** the whole message as signed */
  bytes: Uint8Array;
}

function payloadOf(message: ContributionMessage): Map<number, unknown> {
  switch (message.kind) {
    case 'beacon': {
      const b = message.body;
      return new Map<number, unknown>([[0, KIND.beacon], [1, b.time], [2, b.nonce], [3, b.region], [4, b.frequencyHz], [5, b.eirpDbm]]);
    }
    case 'witness': {
      const w = message.body;
      return new Map<number, unknown>([[0, KIND.witness], [1, w.beaconId], [2, w.beaconer], [3, w.receivedAt], [4, w.rssi], [5, w.snr], [6, w.frequencyHz], [7, w.link], [8, w.region]]);
    }
    case 'relay': {
      const r = message.body;
      return new Map<number, unknown>([[0, KIND.relay], [1, r.origin], [2, r.firstSeq], [3, r.hashes], [4, r.time]]);
    }
  }
}

/** Signs a message with the device key; `sign` needs no I/O in the simulator. */
export function signContribution(device: DeviceIdentity, message: ContributionMessage, sign: (toBeSigned: Uint8Array) => Uint8Array): Uint8Array {
  const protectedBytes = protectedHeader(device);
  const payload = encodeCbor(payloadOf(message));
  return encodeSign1(protectedBytes, payload, sign(sigStructure(protectedBytes, payload)));
}

/** The same, for a key that signs asynchronously (the box's DeviceKey). */
export async function signContributionAsync(device: DeviceIdentity, message: ContributionMessage, sign: SignFunction): Promise<Uint8Array> {
  const protectedBytes = protectedHeader(device);
  const payload = encodeCbor(payloadOf(message));
  return encodeSign1(protectedBytes, payload, await sign(sigStructure(protectedBytes, payload)));
}

function protectedHeader(device: DeviceIdentity): Uint8Array {
  return encodeCbor(new Map<number, unknown>([[HEADER.alg, device.scheme.coseAlg], [HEADER.contentType, CONTENT_FORMAT_CBOR], [HEADER.kid, device.kid]]));
}

/** A beacon's id: the first 16 bytes of the SHA-256 of the whole signed beacon. */
export function beaconId(bytes: Uint8Array): Uint8Array {
  return sha256(bytes).subarray(0, BEACON_ID_BYTES);
}

/** How a witness names a beaconer: the first BEACONER_BYTES of its kid. */
export function beaconerOf(kid: Uint8Array): Uint8Array {
  return kid.subarray(0, BEACONER_BYTES);
}

/** The first RELAY_HASH_BYTES of a reading's SHA-256 (its chain hash). */
export function relayHash(readingHash: Uint8Array): Uint8Array {
  return readingHash.subarray(0, RELAY_HASH_BYTES);
}

/**
 * Parses any of the three kinds; throws CoseError naming what is wrong. `valid` says
 * whether the signature holds: a caller refuses and counts a message that is not valid.
 */
export function openContribution(bytes: Uint8Array): OpenedMessage {
  const parts = parseSign1Parts(bytes, [HEADER.alg, HEADER.contentType, HEADER.kid]);
  let signer: DeviceIdentity;
  try {
    signer = identityFromKid(parts.kid);
  } catch (err) {
    throw new CoseError(`kid: ${(err as Error).message}`);
  }
  if (!signer.scheme.acceptedAlgs.includes(parts.alg)) throw new CoseError(`alg ${parts.alg} does not match a ${signer.scheme.name} key`);
  if (parts.headers.get(HEADER.contentType) !== CONTENT_FORMAT_CBOR) throw new CoseError(`content type is not ${CONTENT_FORMAT_CBOR} (application/cbor)`);
  let map: unknown;
  try {
    map = decodeCbor(parts.payload);
  } catch (err) {
    throw new CoseError(`payload is not CBOR: ${(err as Error).message}`);
  }
  if (!(map instanceof Map)) throw new CoseError('payload is not a CBOR map');
  const message = readMessage(map);
  const valid = signer.scheme.verify(parts.signature, sigStructure(parts.protectedBytes, parts.payload), signer.publicKey);
  return { signer, message, valid, bytes };
}

function readMessage(map: Map<unknown, unknown>): ContributionMessage {
  const field = new Fields(map);
  const kind = field.int(0, 'kind');
  switch (kind) {
    case KIND.beacon:
      return { kind: 'beacon', body: { time: field.int(1, 'time'), nonce: field.bytes(2, 'nonce'), region: field.text(3, 'region'), frequencyHz: field.int(4, 'frequency'), eirpDbm: field.number(5, 'eirp') } };
    case KIND.witness:
      return {
        kind: 'witness',
        body: {
          beaconId: field.bytes(1, 'beacon id', BEACON_ID_BYTES), beaconer: field.bytes(2, 'beaconer', BEACONER_BYTES), receivedAt: field.int(3, 'received at'),
          rssi: field.number(4, 'rssi'), snr: field.number(5, 'snr'), frequencyHz: field.int(6, 'frequency'), link: field.text(7, 'link'), region: field.text(8, 'region'),
        },
      };
    case KIND.relay: {
      const hashes = map.get(3);
      if (!Array.isArray(hashes) || hashes.some((h) => !(h instanceof Uint8Array) || (h.length !== 0 && h.length !== RELAY_HASH_BYTES))) {
        throw new CoseError(`relay attestation: hashes (3) must be an array of ${RELAY_HASH_BYTES}-byte or empty byte strings`);
      }
      if (hashes.length === 0 || hashes.length > 4096) throw new CoseError('relay attestation: hashes (3) must name 1 to 4096 readings');
      return { kind: 'relay', body: { origin: field.bytes(1, 'origin'), firstSeq: field.int(2, 'first seq'), hashes: hashes as Uint8Array[], time: field.int(4, 'time') } };
    }
    default:
      throw new CoseError(`kind (0) ${kind} is not 1 (beacon), 2 (witness) or 3 (relay attestation)`);
  }
}

class Fields {
  private readonly map: Map<unknown, unknown>;
  constructor(map: Map<unknown, unknown>) {
    this.map = map;
  }
  int(key: number, name: string): number {
    const v = safeInteger(this.map.get(key));
    if (v === undefined) throw new CoseError(`${name} (${key}) is missing or not an integer`);
    return v;
  }
  number(key: number, name: string): number {
    const v = this.map.get(key);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new CoseError(`${name} (${key}) is missing or not a number`);
    return v;
  }
  text(key: number, name: string): string {
    const v = this.map.get(key);
    if (typeof v !== 'string' || v.length > 64) throw new CoseError(`${name} (${key}) is missing or not a text of at most 64 characters`);
    return v;
  }
  bytes(key: number, name: string, length?: number): Uint8Array {
    const v = this.map.get(key);
    if (!(v instanceof Uint8Array) || (length !== undefined && v.length !== length) || v.length > 64) {
      throw new CoseError(`${name} (${key}) is missing or not a byte string${length !== undefined ? ` of ${length} bytes` : ''}`);
    }
    return v;
  }
}

/** A beacon as it goes on a radio: the magic byte, then the signed beacon. */
export function beaconFrame(signedBeacon: Uint8Array): Uint8Array {
  const frame = new Uint8Array(1 + signedBeacon.length);
  frame[0] = BEACON_FRAME_MAGIC;
  frame.set(signedBeacon, 1);
  return frame;
}

/** The signed beacon in a radio frame, or undefined when the frame is not a beacon. */
export function beaconInFrame(frame: Uint8Array): Uint8Array | undefined {
  return frame[0] === BEACON_FRAME_MAGIC && frame.length > 1 ? frame.subarray(1) : undefined;
}
