// Receipts: runs round-trip; a receipt for one run from seq 0 is byte for byte a format 1
// receipt; format 1 receipts decode as one run from 0; malformed runs are refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync, sign } from 'node:crypto';
import { decodeCbor, encodeCbor } from '../agent/codec/cbor.ts';
import { encodeSign1, parseSign1Parts, HEADER, sigStructure } from '../agent/codec/cose.ts';
import { ED25519, identityFromPublicKey } from '../agent/codec/identity.ts';
import { MAX_RECEIPT_RANGES, RECEIPT, signReceiptSync, verifyReceipt, type ReceiptRange } from '../agent/codec/receipt.ts';

const gatewayKey = generateKeyPairSync('ed25519');
const gateway = identityFromPublicKey(ED25519, new Uint8Array(Buffer.from(gatewayKey.publicKey.export({ format: 'jwk' }).x!, 'base64url')));
const deviceKey = generateKeyPairSync('ed25519');
const device = identityFromPublicKey(ED25519, new Uint8Array(Buffer.from(deviceKey.publicKey.export({ format: 'jwk' }).x!, 'base64url')));
const signer = (tbs: Uint8Array) => new Uint8Array(sign(null, tbs, gatewayKey.privateKey));
const h = (n: number) => new Uint8Array(32).fill(n);
const fields = { device: device.id, deviceKid: device.kid, time: 1_800_000_000 };

/** Signs any payload map as a receipt, to hand the decoder what a gateway should not send. */
function rawReceipt(body: Map<number, unknown>): Uint8Array {
  const protectedBytes = encodeCbor(new Map<number, unknown>([[HEADER.alg, -8], [HEADER.contentType, 60], [HEADER.kid, gateway.kid]]));
  const payload = encodeCbor(body);
  return encodeSign1(protectedBytes, payload, signer(sigStructure(protectedBytes, payload)));
}

test('runs round-trip: the lowest in keys 2, 3 and 5, the others in key 6', () => {
  const ranges: ReceiptRange[] = [{ first: 4, last: 9, hash: h(9) }, { first: 11, last: 11, hash: h(11) }, { first: 20, last: 30, hash: h(30) }];
  const bytes = signReceiptSync(gateway, signer, { ...fields, ranges });
  const receipt = verifyReceipt(bytes);
  assert.ok(receipt.valid);
  assert.equal(receipt.ranges, ranges);
  assert.is(receipt.seq, 9);
  assert.is(receipt.highest, 30);
  const body = decodeCbor(parseSign1Parts(bytes, [1, 3, 4]).payload) as Map<number, unknown>;
  assert.is(body.get(RECEIPT.first), 4);
  assert.is((body.get(RECEIPT.above) as unknown[]).length, 2);
});

test('one run from seq 0 is a format 1 receipt, and a format 1 receipt covers 0 through seq', () => {
  const bytes = signReceiptSync(gateway, signer, { ...fields, seq: 41, hash: h(1) });
  const body = decodeCbor(parseSign1Parts(bytes, [1, 3, 4]).payload) as Map<number, unknown>;
  assert.equal([...body.keys()], [1, 2, 3, 4]);
  assert.equal(verifyReceipt(bytes).ranges, [{ first: 0, last: 41, hash: h(1) }]);
  const viaRanges = signReceiptSync(gateway, signer, { ...fields, ranges: [{ first: 0, last: 41, hash: h(1) }] });
  assert.equal(viaRanges, bytes);
});

test('malformed runs are refused with a reason', () => {
  const base = () => new Map<number, unknown>([[1, device.kid], [2, 9], [3, h(9)], [4, 1]]);
  const cases: [Map<number, unknown>, RegExp][] = [
    [new Map([...base(), [6, [[10, 12, h(12)]]]]), /touches the run below/],
    [new Map([...base(), [6, [[8, 12, h(12)]]]]), /overlaps/],
    [new Map([...base(), [6, [[14, 12, h(12)]]]]), /is empty/],
    [new Map([...base(), [6, [[14, 15]]]]), /range 0 is not \[first, last, 32-byte hash\]/],
    [new Map([...base(), [6, [[14, 15, h(1).subarray(1)]]]]), /range 0 is not/],
    [new Map([...base(), [6, 'runs']]), /ranges are not an array/],
    [new Map([...base(), [5, 10]]), /is empty/],
    [new Map([...base(), [5, -1]]), /first seq is not an unsigned integer/],
    [new Map([...base(), [6, Array.from({ length: MAX_RECEIPT_RANGES }, (_, i) => [20 + 2 * i, 20 + 2 * i, h(i)])]]), /more than 16/],
  ];
  for (const [body, reason] of cases) assert.throws(() => verifyReceipt(rawReceipt(body)), reason);
  assert.throws(() => signReceiptSync(gateway, signer, { ...fields, ranges: [] }), /at least one run/);
});

test.run();
