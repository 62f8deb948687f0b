import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync, sign } from 'node:crypto';
import { decodeCbor, encodeCbor, splitCborSequence, cborItemLength } from '../agent/codec/cbor.ts';
import { fromBase32, toBase32 } from '../agent/codec/base32.ts';
import { GENESIS_PREV, chainStatus, messageHash } from '../agent/codec/chain.ts';
import { parseSign1, signSign1 } from '../agent/codec/cose.ts';
import { ED25519, identityFromId, identityFromPublicKey } from '../agent/codec/identity.ts';
import { SENML, encodeSenmlPack, resolveSenmlPack } from '../agent/codec/senml.ts';
import { ReadingVerifier, VerifyError } from '../agent/codec/verify.ts';

function softwareSigner() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url'));
  const identity = identityFromPublicKey(ED25519, raw);
  return { identity, sign: (bytes: Uint8Array) => new Uint8Array(sign(null, bytes, privateKey)) };
}

async function makeChain(count: number) {
  const signer = softwareSigner();
  const messages: Uint8Array[] = [];
  let prev: Uint8Array = GENESIS_PREV;
  for (let seq = 0; seq < count; seq++) {
    const payload = encodeSenmlPack({ time: 1_800_000_000 + seq, records: [{ n: 'temperature', u: 'Cel', v: 20.5 + seq }, { n: 'door', vb: true }] });
    const bytes = await signSign1({ alg: -8, kid: signer.identity.kid, seq, prev }, payload, signer.sign);
    messages.push(bytes);
    prev = messageHash(bytes);
  }
  return { signer, messages };
}

test('SenML packs use integer labels, not text keys', () => {
  const decoded = decodeCbor(encodeSenmlPack({ time: 1_800_000_000.25, baseName: 'box1/', records: [{ n: 'temperature', u: 'Cel', v: 21.5 }, { n: 'label', vs: 'x', t: -1 }] })) as Map<unknown, unknown>[];
  assert.ok(Array.isArray(decoded));
  for (const record of decoded) {
    assert.ok(record instanceof Map, 'each record is a CBOR map');
    for (const key of record.keys()) assert.type(key, 'number');
  }
  assert.is(decoded[0]!.get(SENML.bn), 'box1/');
  assert.is(decoded[0]!.get(SENML.bt), 1_800_000_000.25);
  assert.is(decoded[0]!.get(SENML.n), 'temperature');
  assert.is(decoded[0]!.get(SENML.u), 'Cel');
  assert.is(decoded[0]!.get(SENML.v), 21.5);
  assert.is(decoded[1]!.get(SENML.vs), 'x');
  assert.is(decoded[1]!.get(SENML.t), -1);
  assert.not.ok(decoded[1]!.has(SENML.bt), 'base time only in the first record');
});

test('SenML resolution follows RFC 8428: base name, base time, base unit, base value, relative time', () => {
  const pack = [
    new Map<number, unknown>([[SENML.bn, 'urn:dev:ow:10e2073a01080063:'], [SENML.bt, 1.320067464e9], [SENML.bu, '%RH'], [SENML.bv, 10], [SENML.v, 20]]),
    new Map<number, unknown>([[SENML.u, 'lon'], [SENML.v, 24.30621]]),
    new Map<number, unknown>([[SENML.n, 'temp'], [SENML.t, 60], [SENML.v, 1]]),
    new Map<number, unknown>([[SENML.bt, 0], [SENML.n, 'rel'], [SENML.t, -5], [SENML.vb, false]]),
  ];
  const records = resolveSenmlPack(pack, 2_000_000_000);
  assert.equal(records[0], { n: 'urn:dev:ow:10e2073a01080063:', u: '%RH', v: 30, t: 1.320067464e9 });
  assert.equal(records[1], { n: 'urn:dev:ow:10e2073a01080063:', u: 'lon', v: 34.30621, t: 1.320067464e9 });
  assert.equal(records[2], { n: 'urn:dev:ow:10e2073a01080063:temp', u: '%RH', v: 11, t: 1.320067524e9 });
  assert.equal(records[3], { n: 'urn:dev:ow:10e2073a01080063:rel', u: '%RH', vb: false, t: 2_000_000_000 - 5 });
});

test('SenML resolution rejects bad records with their index', () => {
  const cases: [unknown, RegExp][] = [
    [[], /empty/],
    [{}, /not a CBOR array/],
    [[new Map<number, unknown>([[SENML.n, '-bad'], [SENML.v, 1]])], /record 0 has invalid name/],
    [[new Map<number, unknown>([[SENML.n, 'a'], [SENML.v, 1]]), new Map<number, unknown>([[SENML.n, 'b'], [SENML.v, 1], [SENML.vs, 'x']])], /record 1 has more than one value/],
    [[new Map([[SENML.n, 'a']])], /neither a value nor a sum/],
    [[new Map<unknown, unknown>([[SENML.n, 'a'], [SENML.v, 'hot']])], /record 0 v is not a finite number/],
    [[new Map<unknown, unknown>([[SENML.n, 'a'], [SENML.v, 1], ['x_', 1]])], /must-understand/],
    [[new Map<unknown, unknown>([[SENML.bver, 99], [SENML.n, 'a'], [SENML.v, 1]])], /version 99/],
  ];
  for (const [pack, pattern] of cases) {
    assert.throws(() => resolveSenmlPack(pack, 0), pattern);
  }
});

test('base32 ids round-trip and are topic-safe', () => {
  for (let len = 0; len < 40; len++) {
    const bytes = new Uint8Array(len).map((_, i) => (i * 37 + len) & 0xff);
    assert.equal(fromBase32(toBase32(bytes)), bytes);
  }
  const { identity } = softwareSigner();
  assert.match(identity.id, /^[a-z2-7]+$/);
  assert.is(identityFromId(identity.id).id, identity.id);
  assert.throws(() => identityFromId(identity.id.slice(0, -1) + '1'), /not valid/);
});

test('a signed message parses back with alg, kid, seq and prev in the protected header', async () => {
  const { signer, messages } = await makeChain(2);
  const first = parseSign1(messages[0]!);
  assert.is(messages[0]![0], 0xd2, 'CBOR tag 18');
  assert.is(first.header.alg, -8);
  assert.equal(first.header.kid, signer.identity.kid);
  assert.is(first.header.seq, 0);
  assert.equal(first.header.prev, GENESIS_PREV);
  assert.equal(parseSign1(messages[1]!).header.prev, messageHash(messages[0]!));
});

test('the verifier accepts a genuine chain and reports each link', async () => {
  const { signer, messages } = await makeChain(4);
  const verifier = new ReadingVerifier();
  const results = messages.map((m) => verifier.verify(m));
  assert.equal(results.map((r) => r.chain), ['start', 'ok', 'ok', 'ok']);
  assert.ok(results.every((r) => r.valid && r.device === signer.identity.id));
  assert.equal(results[2]!.records[0], { n: 'temperature', u: 'Cel', v: 22.5, t: 1_800_000_002 });
});

test('the verifier reports gap, replay and reorder', async () => {
  const { messages } = await makeChain(5);
  const check = (order: number[]) => {
    const verifier = new ReadingVerifier();
    return order.map((i) => verifier.verify(messages[i]!).chain);
  };
  assert.equal(check([0, 1, 3, 4]), ['start', 'ok', 'gap', 'ok']);
  assert.equal(check([0, 1, 1]), ['start', 'ok', 'broken']);
  assert.equal(check([0, 2, 1]), ['start', 'gap', 'broken']);
  assert.equal(check([2, 3]), ['start', 'ok']);
});

test('a message whose prev does not match the previous message is broken', async () => {
  const a = await makeChain(2);
  const signer = a.signer;
  const payload = encodeSenmlPack({ time: 1_800_000_000, records: [{ n: 'x', v: 1 }] });
  const forged = await signSign1({ alg: -8, kid: signer.identity.kid, seq: 1, prev: new Uint8Array(32).fill(7) }, payload, signer.sign);
  const verifier = new ReadingVerifier();
  verifier.verify(a.messages[0]!);
  const result = verifier.verify(forged);
  assert.ok(result.valid);
  assert.is(result.chain, 'broken');
});

test('flipping any single bit of a message makes it fail', async () => {
  const { messages } = await makeChain(1);
  const original = messages[0]!;
  let checked = 0;
  for (let i = 0; i < original.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const tampered = original.slice();
      tampered[i]! ^= bit;
      let accepted = false;
      try {
        accepted = new ReadingVerifier().verify(tampered).valid;
      } catch (err) {
        assert.instance(err, VerifyError);
      }
      assert.not.ok(accepted, `flipping bit ${bit} of byte ${i} was accepted`);
      checked++;
    }
  }
  assert.is(checked, original.length * 2);
});

test('a pinned public key refuses messages of other devices', async () => {
  const a = await makeChain(1);
  const b = softwareSigner();
  assert.throws(() => new ReadingVerifier({ publicKey: b.identity.publicKey }).verify(a.messages[0]!), /not the device of the given public key/);
  assert.ok(new ReadingVerifier({ publicKey: a.signer.identity.publicKey }).verify(a.messages[0]!).valid);
});

test('malformed COSE is rejected with a reason, never a crash', () => {
  const cases: [unknown, RegExp][] = [
    [[1, 2, 3], /array of 4/],
    [[new Uint8Array(0), new Map(), new Uint8Array(1), new Uint8Array(64)], /protected header/],
    [[encodeCbor(new Map([[1, -8]])), new Map(), new Uint8Array(1), new Uint8Array(64)], /kid is missing/],
    [[encodeCbor(new Map<unknown, unknown>([[1, -8], [4, new Uint8Array(33)]])), new Map(), new Uint8Array(1), new Uint8Array(64)], /seq is missing/],
    [[encodeCbor(new Map<unknown, unknown>([[1, -8], [4, new Uint8Array(33)], ['seq', 1], ['prev', new Uint8Array(3)]])), new Map(), new Uint8Array(1), new Uint8Array(64)], /prev/],
    [[encodeCbor(new Map<unknown, unknown>([[1, -8], [4, new Uint8Array(33)], ['seq', -1], ['prev', new Uint8Array(32)]])), new Map(), new Uint8Array(1), new Uint8Array(64)], /seq/],
    [[encodeCbor(new Map<unknown, unknown>([[1, -8], [2, [99]], [4, new Uint8Array(33)], ['seq', 1], ['prev', new Uint8Array(32)]])), new Map(), new Uint8Array(1), new Uint8Array(64)], /crit/],
    [[encodeCbor(new Map<unknown, unknown>([[1, -8], [4, new Uint8Array(33)], ['seq', 1], ['prev', new Uint8Array(32)]])), new Map(), null, new Uint8Array(64)], /detached/],
  ];
  for (const [value, pattern] of cases) {
    assert.throws(() => parseSign1(encodeCbor(value)), pattern);
  }
  assert.throws(() => new ReadingVerifier().verify(new Uint8Array([0xff, 0x00])), (e: unknown) => e instanceof VerifyError);
});

test('CBOR sequences split into items with their exact bytes; truncation is an error', async () => {
  const { messages } = await makeChain(3);
  const joined = Buffer.concat(messages);
  const items = splitCborSequence(joined);
  assert.is(items.length, 3);
  items.forEach((item, i) => assert.equal(new Uint8Array(item.bytes), messages[i]));
  assert.throws(() => cborItemLength(joined.subarray(0, joined.length - 1), items[2]!.offset), /truncated/);
  assert.throws(() => cborItemLength(new Uint8Array([0x9f, 0xff]), 0), /indefinite/);
  assert.throws(() => cborItemLength(new Uint8Array([0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 0), /more items than bytes/);
});

test('chain status logic', () => {
  const hash = new Uint8Array(32).fill(1);
  assert.is(chainStatus(undefined, 5, hash), 'start');
  assert.is(chainStatus({ seq: 4, hash }, 5, hash), 'ok');
  assert.is(chainStatus({ seq: 4, hash }, 5, GENESIS_PREV), 'broken');
  assert.is(chainStatus({ seq: 4, hash }, 4, hash), 'broken');
  assert.is(chainStatus({ seq: 4, hash }, 7, hash), 'gap');
});

test.run();
