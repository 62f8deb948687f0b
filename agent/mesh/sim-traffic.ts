// What the boxes of `iop-agent sim` send: real signed readings, hash-chained, with the
// five records of a box with the default sensors, and real gateway receipts. Their size
// and their likeness from one reading to the next are what the mesh's compression sees.
// Keys come from the seed, so a run is repeatable. With `incompressible`, the records are
// random numbers of about the same size instead, which no compression shrinks.
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { messageHash, GENESIS_PREV } from '../codec/chain.ts';
import { signSign1Sync } from '../codec/cose.ts';
import { toHex } from '../codec/hex.ts';
import { ED25519, identityFromPublicKey, type DeviceIdentity } from '../codec/identity.ts';
import { signReceiptSync } from '../codec/receipt.ts';
import { encodeSenmlPack, type SenmlRecord } from '../codec/senml.ts';
import { SeededRandom } from '../../sensors/random.ts';

/** The readings and receipts of a simulated mesh, signed for real. */
export interface SimTraffic {
  /** reading n (from 0) of box `origin`: seq n of its chain */
  reading(origin: number, n: number): Uint8Array;
  /** the hash of that reading (the chain link) */
  hash(origin: number, n: number): Uint8Array;
  /** the gateway's receipt covering box `origin`'s readings up to number n */
  receipt(origin: number, n: number): Uint8Array;
  /** the gateway's receipt naming these held runs of box `origin`'s readings, ascending (as agent/gateway signs them) */
  receiptOf(origin: number, runs: { first: number; last: number }[]): Uint8Array;
  /** box `origin`'s device identity */
  identity(origin: number): DeviceIdentity;
  /** box `origin`'s device key, signing at once (beacons and witnesses: docs/rewards.md) */
  sign(origin: number, toBeSigned: Uint8Array): Uint8Array;
  /** the gateway's public key, hex (what uplink.gatewayKeys holds) */
  readonly gatewayKey: string;
}

/** PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const START_TIME_S = 1_795_000_000;

interface SimBox {
  key: KeyObject;
  identity: DeviceIdentity;
  random: SeededRandom;
  readings: Uint8Array[];
  hashes: Uint8Array[];
  temperature: number;
  pulses: number;
}

function keyFrom(random: SeededRandom): { key: KeyObject; identity: DeviceIdentity } {
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, random.bytes(32)]), format: 'der', type: 'pkcs8' });
  const jwk = key.export({ format: 'jwk' });
  return { key, identity: identityFromPublicKey(ED25519, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))) };
}

/** Random numbers, 9 bytes each in CBOR: about the size of the default five records. */
function noise(random: SeededRandom): SenmlRecord[] {
  return Array.from({ length: 18 }, (_, i) => ({ n: `r${i}`, v: random.next() }));
}

export function signedTraffic(seed: number, intervalS: number, options: { incompressible?: boolean } = {}): SimTraffic {
  const boxes = new Map<number, SimBox>();
  const gateway = keyFrom(new SeededRandom(seed ^ 0x5eed));
  const receipts = new Map<string, Uint8Array>();

  const box = (origin: number): SimBox => {
    let b = boxes.get(origin);
    if (!b) {
      const random = new SeededRandom((seed * 7919 + origin) >>> 0);
      boxes.set(origin, b = { ...keyFrom(random), random, readings: [], hashes: [], temperature: 12 + random.next() * 10, pulses: 0 });
    }
    return b;
  };

  const reading = (origin: number, n: number): Uint8Array => {
    const b = box(origin);
    while (b.readings.length <= n) {
      const seq = b.readings.length;
      b.temperature += (b.random.next() - 0.5) * 0.4;
      const rate = Math.floor(b.random.next() * 4);
      b.pulses += rate * intervalS;
      const payload = encodeSenmlPack({
        time: START_TIME_S + origin * 7 + seq * intervalS + b.random.next(),
        records: options.incompressible ? noise(b.random) : [
          { n: 'temperature', u: 'Cel', v: Math.fround(b.temperature) },
          { n: 'humidity', u: '%RH', v: Math.round(40 + b.random.next() * 30) },
          { n: 'pressure', u: 'Pa', v: Math.round(100_800 + b.random.next() * 900) },
          { n: 'pulse/total', u: 'count', v: b.pulses },
          { n: 'pulse/rate', u: '/s', v: rate },
        ],
      });
      const header = { alg: ED25519.coseAlg, kid: b.identity.kid, seq, prev: seq ? b.hashes[seq - 1]! : GENESIS_PREV };
      const bytes = signSign1Sync(header, payload, (tbs) => new Uint8Array(sign(null, tbs, b.key)));
      b.readings.push(bytes);
      b.hashes.push(messageHash(bytes));
    }
    return b.readings[n]!;
  };

  const receipt = (origin: number, n: number): Uint8Array => {
    const id = `${origin}/${n}`;
    let bytes = receipts.get(id);
    if (!bytes) {
      const b = box(origin);
      reading(origin, n);
      bytes = signReceiptSync(gateway.identity, (tbs) => new Uint8Array(sign(null, tbs, gateway.key)), {
        device: b.identity.id, deviceKid: b.identity.kid, seq: n, hash: b.hashes[n]!, time: START_TIME_S + n * intervalS + 2,
      });
      receipts.set(id, bytes);
    }
    return bytes;
  };

  const receiptOf = (origin: number, runs: { first: number; last: number }[]): Uint8Array => {
    if (runs.length === 1 && runs[0]!.first === 0) return receipt(origin, runs[0]!.last);
    const b = box(origin);
    const highest = runs[runs.length - 1]!.last;
    reading(origin, highest);
    return signReceiptSync(gateway.identity, (tbs) => new Uint8Array(sign(null, tbs, gateway.key)), {
      device: b.identity.id, deviceKid: b.identity.kid, time: START_TIME_S + highest * intervalS + 2,
      ranges: runs.map((r) => ({ first: r.first, last: r.last, hash: b.hashes[r.last]! })),
    });
  };

  return {
    reading, receipt, receiptOf,
    hash: (origin, n) => {
      reading(origin, n);
      return box(origin).hashes[n]!;
    },
    identity: (origin) => box(origin).identity,
    sign: (origin, toBeSigned) => new Uint8Array(sign(null, toBeSigned, box(origin).key)),
    gatewayKey: toHex(gateway.identity.publicKey),
  };
}
