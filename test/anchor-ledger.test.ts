// The anchoring ledger on a real gateway store (SQLite): epochs are built once, at their
// end, each stored reading in exactly one epoch (a late commit goes to the next), the
// leaves survive a reopen, and the ledger refuses a changed epoch length or another chain.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { GENESIS_PREV } from '../agent/codec/chain.ts';
import { buildTree, verifyInclusion } from '../agent/chain/merkle.ts';
import { proofFromLedger } from '../agent/chain/proofs.ts';
import { SqliteAnchorLedger } from '../agent/gateway/anchor-ledger.ts';
import { SqliteGatewayStore } from '../agent/gateway/store-sqlite.ts';
import { isIopError } from '../agent/errors.ts';
import { tempDir } from './helpers/cli.ts';
import { LEDGER_DEVICE, chainedReadings } from './helpers/ledger.ts';

const EPOCH_MS = 10_000;
const DEVICE = LEDGER_DEVICE;
const readings = chainedReadings;

test('each stored reading is in exactly one epoch, built once after its end; proofs lead to the recorded root', async () => {
  const dir = tempDir('iop-ledger-');
  try {
    const store = new SqliteGatewayStore(dir.path, { gapTimeoutMs: 60_000 });
    let ledger = new SqliteAnchorLedger(dir.path, { epochS: EPOCH_MS / 1000 });
    const t0 = 100 * EPOCH_MS;
    assert.equal(ledger.buildDue(t0 + 1, 1000), []); // anchoring starts in epoch 100
    const first = readings(5, 0, GENESIS_PREV, (i) => t0 + i * 1000);
    await store.acceptAll(first);
    // Not before the end plus the grace.
    assert.equal(ledger.buildDue(t0 + EPOCH_MS + 500, 1000), []);
    const built = ledger.buildDue(t0 + EPOCH_MS + 1500, 1000);
    assert.equal(built.map((e) => [e.epoch, e.leaves, e.state]), [[100, 5, 'built']]);
    assert.is(built[0]!.root, buildTree(first).root);
    // A reading received in epoch 100 but committed after it was built goes into 101,
    // with those received in 101; epoch 102 has none and gets no root.
    const late = readings(1, 5, first[4]!.hash, () => t0 + 9_999);
    const next = readings(3, 6, late[0]!.hash, (i) => t0 + EPOCH_MS + 2000 + i);
    await store.acceptAll([...late, ...next]);
    const later = ledger.buildDue(t0 + 3 * EPOCH_MS + 1500, 1000);
    assert.equal(later.map((e) => [e.epoch, e.leaves]), [[101, 4]]);
    assert.is(ledger.epochOf(DEVICE, 5), 101);
    assert.equal(ledger.buildDue(t0 + 3 * EPOCH_MS + 1500, 1000), [], 'built once');
    // A restart: the ledger reopens with the leaves; proofs verify against the roots.
    ledger.close();
    ledger = new SqliteAnchorLedger(dir.path, {});
    for (let seq = 0; seq < 9; seq++) {
      const proof = await proofFromLedger(ledger, DEVICE, seq);
      assert.is(proof.root, ledger.epoch(proof.epoch)!.root);
      assert.ok(verifyInclusion(proof.root, proof.leaf, proof.proof), `seq ${seq}`);
      assert.not.ok(verifyInclusion(proof.root, { ...proof.leaf, seq: seq + 100 }, proof.proof));
      assert.is(proof.anchored, null); // not yet in a block
    }
    await proofFromLedger(ledger, DEVICE, 99).then(() => assert.unreachable('proved'), (err: Error) => assert.match(err.message, /in no anchored epoch yet/));
    ledger.close();
    await store.close();
  } finally {
    dir.remove();
  }
});

test('a changed epoch length, another chain or contract, are refused with the reason', async () => {
  const dir = tempDir('iop-ledger-');
  try {
    await new SqliteGatewayStore(dir.path, { gapTimeoutMs: 60_000 }).close();
    const ledger = new SqliteAnchorLedger(dir.path, { epochS: 3600 });
    ledger.bindChain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');
    ledger.bindChain(31337, '0x5fbdb2315678afecb367f032d93f642f64180aa3');
    assert.throws(() => ledger.bindChain(1, '0x5fbdb2315678afecb367f032d93f642f64180aa3'), /anchors on chain 31337/);
    ledger.close();
    try {
      new SqliteAnchorLedger(dir.path, { epochS: 60 });
      assert.unreachable();
    } catch (err) {
      assert.ok(isIopError(err, 'CONFIG'));
      assert.match((err as Error).message, /epochs of 3600 s; --epoch-s 60 would renumber them/);
    }
  } finally {
    dir.remove();
  }
});

test('proofs from a directory that is not a gateway state dir: refused, nothing created there', () => {
  const dir = tempDir('iop-ledger-');
  try {
    assert.throws(() => new SqliteAnchorLedger(dir.path, {}), /is not a gateway state dir \(no gateway\.db\)/);
    assert.equal(readdirSync(dir.path), []);
  } finally {
    dir.remove();
  }
});

test('the lease lets one anchoring process at a time work a database', () => {
  const dir = tempDir('iop-ledger-');
  try {
    const a = new SqliteAnchorLedger(dir.path, { epochS: 60 });
    const b = new SqliteAnchorLedger(dir.path, { epochS: 60 });
    assert.ok(a.claimLease('a', 1000, 5000));
    assert.not.ok(b.claimLease('b', 2000, 5000));
    assert.ok(a.claimLease('a', 3000, 5000));
    assert.ok(b.claimLease('b', 8001, 5000), 'taken over once a stops renewing');
    assert.not.ok(a.claimLease('a', 9000, 5000));
    a.close();
    b.close();
  } finally {
    dir.remove();
  }
});

test.run();
