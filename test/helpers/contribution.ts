// Device keys and signed beacons/witnesses for the contribution tests and the bench.
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ED25519, identityFromPublicKey, type DeviceIdentity } from '../../agent/codec/identity.ts';
import { beaconerOf, beaconId, signContribution, type Beacon, type ContributionMessage, type Witness } from '../../agent/contribution/messages.ts';

export interface TestBox {
  identity: DeviceIdentity;
  sign: (message: ContributionMessage) => Uint8Array;
  /** signs any bytes with the box's key */
  signBytes: (toBeSigned: Uint8Array) => Uint8Array;
}

/** A box with a key derived from its name, so runs repeat. */
export function testBox(name: string): TestBox {
  const secret = sha256(new TextEncoder().encode(`contribution test key ${name}`));
  const identity = identityFromPublicKey(ED25519, ed25519.getPublicKey(secret));
  const signBytes = (bytes: Uint8Array) => ed25519.sign(bytes, secret);
  return { identity, sign: (message) => signContribution(identity, message, signBytes), signBytes };
}

export function beaconBody(time: number, overrides: Partial<Beacon> = {}): Beacon {
  return { time, nonce: new Uint8Array(8).fill(time & 0xff), region: 'EU868', frequencyHz: 869_525_000, eirpDbm: 14, ...overrides };
}

/** A signed beacon and its id. */
export function makeBeacon(box: TestBox, time: number, overrides: Partial<Beacon> = {}): { bytes: Uint8Array; id: Uint8Array; body: Beacon } {
  const body = beaconBody(time, overrides);
  const bytes = box.sign({ kind: 'beacon', body });
  return { bytes, id: beaconId(bytes), body };
}

export function makeWitness(box: TestBox, beacon: { id: Uint8Array; body: Beacon }, beaconer: TestBox, overrides: Partial<Witness> = {}): Uint8Array {
  return box.sign({
    kind: 'witness',
    body: { beaconId: beacon.id, beaconer: beaconerOf(beaconer.identity.kid), receivedAt: beacon.body.time + 1, rssi: -110, snr: -3, frequencyHz: beacon.body.frequencyHz, link: 'sim', region: beacon.body.region, ...overrides },
  });
}
