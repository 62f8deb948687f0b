// Interoperability with an independent COSE implementation (@auth0/cose, a test-only
// dependency): what the agent signs it verifies, and what it signs the agent verifies.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sign1 } from '@auth0/cose';
import { messageHash, GENESIS_PREV } from '../agent/codec/chain.ts';
import { splitCborSequence } from '../agent/codec/cbor.ts';
import { ED25519, identityFromPublicKey } from '../agent/codec/identity.ts';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import { jsonLines, runCli, tempDir } from './helpers/cli.ts';

const dir = tempDir();
test.after(() => dir.remove());

function publicKeyObject(hex: string) {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(hex, 'hex').toString('base64url') }, format: 'jwk' });
}

test('messages made by `iop-agent sample` verify with @auth0/cose', async () => {
  const state = join(dir.path, 'box');
  const out = join(dir.path, 'sample.cbor');
  const sample = await runCli(['sample', '--count', '5', '--out', out, '--state-dir', state]);
  assert.is(sample.code, 0, sample.stderr);
  const id = JSON.parse((await runCli(['id', '--json', '--state-dir', state])).stdout.toString());
  const key = publicKeyObject(id.publicKey);
  const items = splitCborSequence(readFileSync(out));
  assert.is(items.length, 5);
  for (const item of items) {
    const message = Sign1.decode(item.bytes);
    await message.verify(key); // throws on a bad signature
    assert.is(message.protectedHeaders.get(1), -8);
    assert.equal(new Uint8Array(message.protectedHeaders.get(4) as Uint8Array), identityFromPublicKey(ED25519, Buffer.from(id.publicKey, 'hex')).kid);
  }
  // and the independent implementation rejects a flipped payload byte
  const tampered = items[0]!.bytes.slice();
  tampered[tampered.length - 70]! ^= 1;
  let rejected = false;
  await Sign1.decode(tampered).verify(key).catch(() => { rejected = true; });
  assert.ok(rejected, '@auth0/cose accepted a tampered message');
});

test('messages signed by @auth0/cose with a test key verify with `iop-agent verify --pubkey`', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const identity = identityFromPublicKey(ED25519, raw);
  const messages: Uint8Array[] = [];
  let prev: Uint8Array = GENESIS_PREV;
  for (let seq = 0; seq < 3; seq++) {
    const payload = encodeSenmlPack({ time: 1_800_000_000 + seq, records: [{ n: 'pm25', u: 'ug/m3', v: 12 + seq }] });
    // The chain labels are text labels, which @auth0/cose's typed map does not list but encodes as given.
    const headers = new Map<unknown, unknown>([[1, -8], [3, 112], [4, identity.kid], ['seq', seq], ['prev', prev]]);
    const signed = await Sign1.sign(headers as never, new Map() as never, payload, privateKey);
    const bytes = new Uint8Array(signed.encode());
    messages.push(bytes);
    prev = messageHash(bytes);
  }
  const file = join(dir.path, 'foreign.cbor');
  writeFileSync(file, Buffer.concat(messages));
  const ok = await runCli(['verify', file, '--pubkey', raw.toString('hex')]);
  assert.is(ok.code, 0, ok.stderr);
  const lines = jsonLines(ok.stdout);
  assert.equal(lines.map((l) => [l.seq, l.valid, l.chain]), [[0, true, 'start'], [1, true, 'ok'], [2, true, 'ok']]);
  assert.equal(lines[2].records, [{ n: 'pm25', u: 'ug/m3', v: 14, t: 1_800_000_002 }]);

  // any flipped byte fails, whichever byte it is
  const single = messages[0]!;
  for (let i = 0; i < single.length; i += 7) {
    const tampered = single.slice();
    tampered[i]! ^= 0x10;
    writeFileSync(file, tampered);
    const bad = await runCli(['verify', file, '--pubkey', raw.toString('hex')]);
    assert.is(bad.code, 1, `flipped byte ${i} was accepted`);
    assert.is(bad.stderr.trim().split('\n').length, 1, 'one-line reason');
  }
});

test.run();
