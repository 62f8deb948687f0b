// The forwarder through the mesh: a reading the mesh dropped before the first hop took it
// goes again soon (alone), and a receipt covering readings after a hole makes it publish
// again from the first one the uplink box lacks. And what receipts may delete:
// exactly the runs they name, each checked against the box's own chain.
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
import type { Forwarder, Publisher } from '../agent/uplink/forwarder.ts';
import { signReceiptSync, type ReceiptRange } from '../agent/codec/receipt.ts';
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

/** A box with `count` readings whose forwarder publishes into a FakeMesh; stopped and closed after `body`. */
async function throughFakeMesh(name: string, count: number, attach: { window: number; receiptTimeoutMs: number; failNext?: number }, body: (mesh: FakeMesh, forwarder: Forwarder) => Promise<void>) {
  const { box, forwarder } = await boxWithReadings(name, count);
  const mesh = new FakeMesh();
  mesh.failNext = attach.failNext ?? 0;
  forwarder.attach(mesh, { window: attach.window, receiptTimeoutMs: attach.receiptTimeoutMs, gapGraceMs: 0 });
  try {
    await body(mesh, forwarder);
  } finally {
    forwarder.stop();
    box.journal.close();
  }
}

test('a failed publish sends that reading alone again, not the ones after it the first hop took', () =>
  throughFakeMesh('failed-alone', 4, { window: 4, receiptTimeoutMs: 600_000, failNext: 1 }, async (mesh, forwarder) => {
    await until('the failed reading published again', () => mesh.published.length >= 5);
    await new Promise((r) => setTimeout(r, 100));
    assert.is(mesh.published.length, 5, 'four readings, the failed one twice');
    assert.is(forwarder.counters.publishFailed, 1);
  }));

test('no receipt in time: the oldest window of readings goes again, not the whole backlog', () =>
  throughFakeMesh('timeout-window', 6, { window: 2, receiptTimeoutMs: 300 }, async (mesh, forwarder) => {
    const told: string[] = [];
    forwarder.onResend = (seq, cause) => void told.push(`${seq} ${cause}`);
    await until('six readings published', () => mesh.published.length === 6);
    await until('a receipt timeout', () => forwarder.counters.resentTimeout > 0);
    assert.is(forwarder.counters.resentTimeout, 2, 'one window of the six');
    assert.is(mesh.published.length, 8);
    assert.equal(told, ['0 timeout', '1 timeout'], 'each reading sent again is told, with why');
  }));

test('a receipt covering readings after one the uplink box lacks: publish that one again; the same receipt twice: nothing', async () => {
  const { box, forwarder } = await boxWithReadings('gap', 5);
  const mesh = new FakeMesh();
  forwarder.attach(mesh, { window: 8, receiptTimeoutMs: 600_000, gapGraceMs: 0 });
  await until('five readings published', () => mesh.published.length === 5);
  const receipt = testGateway();
  const [one, three] = [1, 3].map((seq) => messageHash(box.journal.get(seq)!.bytes));
  const first = receipt(box, [{ first: 0, last: 1, hash: one! }]);
  forwarder.onReceipt(first);
  assert.is(forwarder.ackedSeq, 1);
  await new Promise((r) => setTimeout(r, 50));
  forwarder.onReceipt(first);
  await new Promise((r) => setTimeout(r, 50));
  // Through the mesh the same receipt comes again mostly as the answer to a resend: it
  // says nothing of what the gateway lacks (a gap shows as runs after a hole).
  assert.is(mesh.published.length, 5, 'the same receipt twice: nothing to send again');
  forwarder.onReceipt(receipt(box, [{ first: 0, last: 1, hash: one! }, { first: 3, last: 3, hash: three! }]));
  await until('seq 2 published again', () => mesh.published.length === 6);
  await new Promise((r) => setTimeout(r, 50));
  // not seq 3, which the receipt covers, nor 4, above what it covers: it may be on its way
  assert.is(mesh.published.length, 6, 'only seq 2');
  assert.is(forwarder.counters.resentGap, 1);
  forwarder.stop();
  box.journal.close();
});

/** A gateway key of the test's own, and receipts it signs for a box. */
function testGateway() {
  const key = generateKeyPairSync('ed25519');
  const identity = identityFromPublicKey(ED25519, new Uint8Array(Buffer.from(key.publicKey.export({ format: 'jwk' }).x!, 'base64url')));
  return (box: { identity: { id: string; kid: Uint8Array } }, ranges: ReceiptRange[]) => signReceiptSync(identity, (tbs) => new Uint8Array(sign(null, tbs, key.privateKey)), {
    device: box.identity.id, deviceKid: box.identity.kid, ranges, time: Date.now() / 1000,
  });
}

const seqs = (box: { journal: { messages(): Iterable<{ seq: number }> } }) => [...box.journal.messages()].map((m) => m.seq);

test('a receipt frees exactly the runs it names; a run naming another message rejects the receipt', async () => {
  const { box, forwarder } = await boxWithReadings('runs', 10);
  const receipt = testGateway();
  const hashOf = (seq: number) => messageHash(box.journal.get(seq)!.bytes);
  const forged = receipt(box, [{ first: 0, last: 2, hash: hashOf(2) }, { first: 4, last: 6, hash: hashOf(5) }]);
  forwarder.onReceipt(forged);
  assert.equal(seqs(box), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'nothing deleted');
  assert.is(forwarder.counters.rejectedReceipts, 1);
  forwarder.onReceipt(receipt(box, [{ first: 0, last: 2, hash: hashOf(2) }, { first: 4, last: 9, hash: hashOf(9) }]));
  assert.equal(seqs(box), [3]);
  assert.is(box.journal.stats().acked, 2);
  assert.is(box.journal.count(), 1);
  forwarder.stop();
  box.journal.close();
});

test('a run whose last reading the box no longer holds is checked against what it still has', async () => {
  const { box, forwarder } = await boxWithReadings('checked', 10);
  const receipt = testGateway();
  const hashes = new Map([...box.journal.messages()].map((m) => [m.seq, messageHash(m.bytes)]));
  forwarder.onReceipt(receipt(box, [{ first: 5, last: 7, hash: hashes.get(7)! }]));
  assert.equal(seqs(box), [0, 1, 2, 3, 4, 8, 9]);
  // seq 7 is gone: its hash is the prev of seq 8, so a wrong one still shows...
  forwarder.onReceipt(receipt(box, [{ first: 0, last: 7, hash: hashes.get(6)! }]));
  assert.equal(seqs(box), [0, 1, 2, 3, 4, 8, 9], 'a run ending on a wrong hash deletes nothing');
  assert.is(forwarder.counters.rejectedReceipts, 1);
  // ...and the right one frees the rest of the run.
  forwarder.onReceipt(receipt(box, [{ first: 0, last: 7, hash: hashes.get(7)! }]));
  assert.equal(seqs(box), [8, 9]);
  forwarder.stop();
  box.journal.close();
});

test('a run the box cannot check against its own chain deletes nothing', async () => {
  const { box, forwarder } = await boxWithReadings('unchecked', 10);
  const receipt = testGateway();
  const hashes = new Map([...box.journal.messages()].map((m) => [m.seq, messageHash(m.bytes)]));
  forwarder.onReceipt(receipt(box, [{ first: 5, last: 8, hash: hashes.get(8)! }]));
  assert.equal(seqs(box), [0, 1, 2, 3, 4, 9]);
  // Neither seq 6 nor seq 7 is held any more: this box cannot tell what a run ending at 6 holds.
  forwarder.onReceipt(receipt(box, [{ first: 3, last: 6, hash: hashes.get(6)! }]));
  assert.equal(seqs(box), [0, 1, 2, 3, 4, 9]);
  forwarder.stop();
  box.journal.close();
});

test.run();
