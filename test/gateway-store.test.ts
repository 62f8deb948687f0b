// The gateway's store on its own (real SQLite): runs of linked readings for receipts, the
// chain walked over a gap after the gap timeout, a late reading taken into its gap,
// readings that contradict their held neighbours refused, the receipt's bound on runs,
// and a store from before runs were kept.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { GENESIS_PREV } from '../agent/codec/chain.ts';
import { MAX_RECEIPT_RANGES } from '../agent/codec/receipt.ts';
import { GatewayStore, type IncomingReading } from '../agent/gateway/store.ts';
import { tempDir } from './helpers/cli.ts';

const dir = tempDir();
test.after(() => dir.remove());
const GAP_MS = 1000;
const DEVICE = 'device-a';

/** A stand-in chain: the store checks links and hashes, signatures are the gateway's job before it. */
function chain(length: number): IncomingReading[] {
  const readings: IncomingReading[] = [];
  let prev = GENESIS_PREV;
  for (let seq = 0; seq < length; seq++) {
    const message = new TextEncoder().encode(`reading ${seq}`);
    const hash = new Uint8Array(createHash('sha256').update(message).digest());
    readings.push({ device: DEVICE, seq, hash, prev, message, receivedMs: 0 });
    prev = hash;
  }
  return readings;
}

const at = (reading: IncomingReading, ms: number) => ({ ...reading, receivedMs: ms });
function openStore(name: string): GatewayStore {
  const state = join(dir.path, name);
  mkdirSync(state, { recursive: true });
  return new GatewayStore(state, { gapTimeoutMs: GAP_MS });
}
const runs = (store: GatewayStore) => store.heldRanges(DEVICE).map((r) => [r.first, r.last]);

test('a gap: receipts name both runs at once; the chain passes it after the timeout; the late reading fills it', () => {
  const store = openStore('gap');
  const r = chain(6);
  store.acceptAll([r[0]!, r[1]!, r[2]!, r[4]!, r[5]!].map((x) => at(x, 0)), 0);
  assert.equal(runs(store), [[0, 2], [4, 5]]);
  assert.equal(store.heldRanges(DEVICE)[1]!.hash, r[5]!.hash, 'a run names the hash of its last reading');
  assert.is(store.frontier(DEVICE)?.seq, 2, 'the chain waits for seq 3');
  const settled = store.settle(DEVICE, GAP_MS);
  assert.is(settled.missing, 1);
  assert.equal(settled.linked.map((l) => [l.seq, l.chain]), [[4, 'gap'], [5, 'ok']]);
  const late = store.accept(at(r[3]!, 2 * GAP_MS), 2 * GAP_MS);
  assert.is(late.outcome, 'late');
  assert.equal(late.linked.map((l) => [l.seq, l.chain]), [[3, 'late']]);
  assert.equal(runs(store), [[0, 5]]);
  assert.is(store.accept(r[3]!).outcome, 'duplicate');
  store.close();
});

test('a reading that does not link to a held neighbour is refused, and the held ones stay', () => {
  const store = openStore('broken');
  const r = chain(4);
  const fork = chain(4).map((x) => ({ ...x }));
  fork[2] = { ...r[2]!, message: new Uint8Array([1]), hash: new Uint8Array(32).fill(7) };
  store.acceptAll([r[0]!, r[1]!, r[3]!], 0);
  assert.is(store.accept(fork[2]!).outcome, 'broken', 'its successor does not link to it');
  assert.is(store.accept({ ...r[2]!, prev: new Uint8Array(32).fill(9) }).outcome, 'broken', 'it does not link to its predecessor');
  assert.is(store.accept({ ...r[0]!, seq: 0, prev: new Uint8Array(32).fill(1), hash: new Uint8Array(32).fill(2) }).outcome, 'conflict');
  assert.equal(runs(store), [[0, 1], [3, 3]]);
  assert.is(store.accept(r[2]!).outcome, 'new');
  assert.equal(runs(store), [[0, 3]]);
  store.close();
});

test('more runs than a receipt holds: the lowest and the newest', () => {
  const store = openStore('many');
  const r = chain(100);
  store.acceptAll(r.filter((x) => x.seq % 2 === 0), 0); // 50 runs of one
  const named = runs(store);
  assert.is(named.length, MAX_RECEIPT_RANGES);
  assert.equal(named[0], [0, 0]);
  assert.equal(named.slice(1), Array.from({ length: MAX_RECEIPT_RANGES - 1 }, (_, i) => 98 - 2 * (MAX_RECEIPT_RANGES - 2 - i)).map((s) => [s, s]));
  store.close();
});

test('a store from before runs: its runs are made from the readings it holds', () => {
  const state = join(dir.path, 'old');
  const store = openStore('old');
  const r = chain(8);
  store.acceptAll([0, 1, 2, 5, 6, 7].map((i) => r[i]!), 0);
  store.close();
  const db = new DatabaseSync(join(state, 'gateway.db'));
  db.exec('DROP TABLE runs');
  // an unlinked reading above the chain position, as the old store could hold
  db.prepare('INSERT INTO readings (device, seq, hash, prev, message, received_ms) VALUES (?, 3, ?, ?, ?, 0)')
    .run(DEVICE, new Uint8Array(32).fill(3), new Uint8Array(32).fill(4), new Uint8Array([3]));
  db.close();
  const reopened = new GatewayStore(state, { gapTimeoutMs: GAP_MS });
  assert.equal(runs(reopened), [[0, 2], [5, 7]]);
  assert.is(reopened.count(DEVICE), 6, 'the unlinked reading was dropped');
  assert.is(reopened.accept(r[3]!).outcome, 'new');
  reopened.close();
});

test.run();
