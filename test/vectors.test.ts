// Fixed test vectors (test/fixtures/vectors.json, made with the RFC 8032 TEST 1 key):
// the signer reproduces them byte for byte and the verifier accepts them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReadingVerifier } from '../agent/codec/verify.ts';
import { fromHex } from '../agent/codec/hex.ts';
import { makeVectors } from './fixtures/make-vectors.ts';

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'vectors.json'), 'utf8'));

test('the signer reproduces the stored vectors exactly', () => {
  assert.equal(makeVectors(), vectors);
});

test('the verifier accepts the vectors as one unbroken chain of the RFC 8032 key', () => {
  const verifier = new ReadingVerifier({ publicKey: fromHex(vectors.publicKey), now: () => 1_800_000_100 });
  const results = vectors.messages.map((m: { message: string }) => verifier.verify(fromHex(m.message)));
  assert.equal(results.map((r: { valid: boolean; chain: string; device: string }) => [r.valid, r.chain, r.device]),
    [[true, 'start', vectors.deviceId], [true, 'ok', vectors.deviceId], [true, 'ok', vectors.deviceId]]);
  assert.equal(results[0].records, [{ n: 'temperature', u: 'Cel', v: 21.5, t: 1_800_000_000 }, { n: 'humidity', u: '%RH', v: 48.2, t: 1_800_000_000 }]);
  assert.equal(results[1].records, [{ n: 'door', vb: true, t: 1_800_000_010.5 }, { n: 'note', vs: 'lid opened', t: 1_800_000_008.5 }]);
  assert.equal(results[2].records, [{ n: 'pulse/total', u: 'count', v: 1234, t: 1_800_000_020 }]);
});

test.run();
