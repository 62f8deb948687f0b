// The journal behind the key-provider interface: any provider (synchronous software
// key, or an asynchronous one such as a secure element on I2C) gives the same chain.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { ReadingVerifier } from '../agent/codec/verify.ts';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import type { DeviceKey } from '../agent/identity/device-key.ts';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import { Journal } from '../agent/store/journal.ts';
import { tempDir } from './helpers/cli.ts';

const dir = tempDir();
test.after(() => dir.remove());

const payload = (i: number) => encodeSenmlPack({ time: 1_800_000_000 + i, records: [{ n: 'x', v: i }] });

test('an asynchronous key provider (no signSync) produces a valid chain; concurrent appends keep order', async () => {
  const state = join(dir.path, 'async');
  const { key, identity } = loadDeviceKey(state, { create: true });
  let pending = 0;
  let maxPending = 0;
  // Like a secure element: signing takes I/O time and answers later.
  const slowKey: DeviceKey = {
    scheme: key.scheme,
    publicKey: key.publicKey,
    async sign(message) {
      pending++;
      maxPending = Math.max(maxPending, pending);
      await new Promise((resolve) => setTimeout(resolve, 2));
      pending--;
      return key.sign(message);
    },
  };
  const journal = Journal.open(state, identity, slowKey);
  const stored = await Promise.all(Array.from({ length: 20 }, (_, i) => journal.append(payload(i))));
  assert.equal(stored.map((m) => m.seq), Array.from({ length: 20 }, (_, i) => i));
  assert.is(maxPending, 1, 'appends are serialised: one signature in flight at a time');
  const verifier = new ReadingVerifier({ publicKey: identity.publicKey });
  const checked = [...journal.messages()].map((m) => verifier.verify(m.bytes));
  assert.ok(checked.every((r, i) => r.valid && r.chain === (i === 0 ? 'start' : 'ok') && r.records[0]!.v === i));
  assert.is(journal.count(), 20);
  journal.close();
});

test('a failing signature stores nothing and leaves the head where it was', async () => {
  const state = join(dir.path, 'failing');
  const { key, identity } = loadDeviceKey(state, { create: true });
  let fail = false;
  const flaky: DeviceKey = {
    scheme: key.scheme,
    publicKey: key.publicKey,
    async sign(message) {
      if (fail) throw new Error('secure element did not answer');
      return key.sign(message);
    },
  };
  const journal = Journal.open(state, identity, flaky);
  await journal.append(payload(0));
  const head = journal.head();
  fail = true;
  let rejected = false;
  await journal.append(payload(1)).catch((err: Error) => { rejected = /secure element did not answer/.test(err.message); });
  assert.ok(rejected);
  assert.equal(journal.head(), head);
  fail = false;
  const next = await journal.append(payload(2));
  assert.is(next.seq, 1, 'the failed attempts consumed no sequence number');
  journal.close();
});

test('messages() pages through a large journal in order', async () => {
  const state = join(dir.path, 'large');
  const { key, identity } = loadDeviceKey(state, { create: true });
  const journal = Journal.open(state, identity, key);
  for (let i = 0; i < 1200; i++) await journal.append(payload(i));
  const seqs = [...journal.messages(0, 100)].map((m) => m.seq);
  assert.equal(seqs, Array.from({ length: 1200 }, (_, i) => i));
  assert.equal([...journal.messages(1150)].map((m) => m.seq)[0], 1150);
  journal.close();
});

test('past its bound the queue drops the oldest readings, counts them, and the chain shows the gap', async () => {
  const state = join(dir.path, 'bounded');
  const { key, identity } = loadDeviceKey(state, { create: true });
  const journal = Journal.open(state, identity, key, { maxMessages: 100 });
  for (let i = 0; i < 150; i++) await journal.append(payload(i));
  assert.equal(journal.stats(), { stored: 100, oldest: 50, head: 149, acked: -1, dropped: 50 });
  journal.removeThrough(119);
  assert.equal(journal.stats(), { stored: 30, oldest: 120, head: 149, acked: 119, dropped: 50 });
  journal.removeThrough(100); // an older receipt changes nothing
  assert.is(journal.acked(), 119);
  journal.close();
  const reopened = Journal.open(state, identity, key, { maxMessages: 100 });
  assert.equal(reopened.stats(), { stored: 30, oldest: 120, head: 149, acked: 119, dropped: 50 }, 'counts survive a restart');
  reopened.close();
});

test('receipts free runs: the queue keeps its holes, and the count and the bound stay right', async () => {
  const state = join(dir.path, 'holes');
  const { key, identity } = loadDeviceKey(state, { create: true });
  const journal = Journal.open(state, identity, key, { maxMessages: 100 });
  for (let i = 0; i < 100; i++) await journal.append(payload(i));
  assert.is(journal.removeRanges([{ first: 10, last: 19 }, { first: 50, last: 89 }, { first: 200, last: 300 }]), 50);
  assert.equal(journal.stats(), { stored: 50, oldest: 0, head: 99, acked: -1, dropped: 0 }, 'seq 0..9 still held: nothing acknowledged in order yet');
  assert.is(journal.get(15), undefined);
  assert.is(journal.get(20)?.seq, 20);
  for (let i = 100; i < 160; i++) await journal.append(payload(i));
  // past 100 held, the oldest go: 0..9, and the next one held is 20 (10..19 are a hole)
  assert.equal(journal.stats(), { stored: 100, oldest: 20, head: 159, acked: -1, dropped: 10 });
  journal.removeRanges([{ first: 20, last: 49 }]);
  assert.equal(journal.stats(), { stored: 70, oldest: 90, head: 159, acked: 89, dropped: 10 }, 'acknowledged up to the oldest still held');
  assert.equal([...journal.messages()].length, 70);
  journal.close();
});

test.run();
