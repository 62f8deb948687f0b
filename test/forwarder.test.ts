// The forwarder through the mesh: a reading the mesh dropped before the first hop took it
// goes again soon, and a receipt that comes twice while later readings are out makes it
// publish again from the first one the uplink box lacks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers/cli.ts';
import { loadConfig } from '../agent/config/load.ts';
import { openBox } from '../agent/box.ts';
import { silentLogger } from '../agent/log.ts';
import { createForwarder } from '../agent/uplink/uplink.ts';
import type { Publisher } from '../agent/uplink/forwarder.ts';
import { signReceiptSync } from '../agent/codec/receipt.ts';
import { ED25519, identityFromPublicKey } from '../agent/codec/identity.ts';
import { messageHash } from '../agent/codec/chain.ts';

const dir = tempDir();
test.after(() => dir.remove());

async function boxWithReadings(name: string, count: number) {
  const file = join(dir.path, `${name}.json`);
  writeFileSync(file, '{}');
  const { config } = loadConfig({ path: file, overrides: { stateDir: join(dir.path, name) } });
  const box = await openBox(config, silentLogger);
  for (let i = 0; i < count; i++) await box.journal.append(new Uint8Array([0x80 + i]));
  return { box, forwarder: createForwarder(config.uplink, config.stateDir, box, silentLogger) };
}

class FakeMesh implements Publisher {
  readonly published: number[] = [];
  failNext = 0;
  publish(_topic: string, payload: Buffer, _options: { qos: 1 }, callback: (error?: Error) => void): void {
    this.published.push(payload.length);
    const fail = this.failNext > 0;
    if (fail) this.failNext--;
    setImmediate(() => callback(fail ? new Error('dropped on the way to the first hop') : undefined));
  }
}

const until = async (what: string, ok: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('a reading the mesh dropped is published again soon, not at the receipt timeout', async () => {
  const { box, forwarder } = await boxWithReadings('dropped', 3);
  const mesh = new FakeMesh();
  mesh.failNext = 1;
  forwarder.attach(mesh, { window: 1, receiptTimeoutMs: 600_000, gapGraceMs: 0 });
  await until('the dropped reading published again', () => mesh.published.length >= 4);
  assert.is(forwarder.counters.published, 4, 'three readings, the first twice');
  forwarder.stop();
  box.journal.close();
});

test('the same receipt twice: publish again from the first reading it does not cover', async () => {
  const { box, forwarder } = await boxWithReadings('gap', 5);
  const mesh = new FakeMesh();
  forwarder.attach(mesh, { window: 8, receiptTimeoutMs: 600_000, gapGraceMs: 0 });
  await until('five readings published', () => mesh.published.length === 5);
  const gatewayKey = generateKeyPairSync('ed25519');
  const gateway = identityFromPublicKey(ED25519, new Uint8Array(Buffer.from(gatewayKey.publicKey.export({ format: 'jwk' }).x!, 'base64url')));
  const [stored] = box.journal.batch(1, 1);
  const receipt = signReceiptSync(gateway, (tbs) => new Uint8Array(sign(null, tbs, gatewayKey.privateKey)), {
    device: box.identity.id, deviceKid: box.identity.kid, seq: 1, hash: messageHash(stored!.bytes), time: Date.now() / 1000,
  });
  forwarder.onReceipt(receipt);
  assert.is(forwarder.ackedSeq, 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.is(mesh.published.length, 5, 'one receipt: nothing to send again');
  forwarder.onReceipt(receipt);
  await until('seq 2 to 4 published again', () => mesh.published.length === 8);
  assert.is(forwarder.counters.resent, 3);
  forwarder.stop();
  box.journal.close();
});

test.run();
