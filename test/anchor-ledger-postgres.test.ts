// The anchoring ledger on a real PostgreSQL gateway store: the SQLite ledger's rules
// (anchor-ledger.test.ts) and what several gateway processes on one database add: two
// builders at once build each epoch once, one lease holder at a time (on the database's
// clock, taken over when the holder stops renewing), a pending transaction seen by the
// next ledger opened, and one chain key for all of them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GENESIS_PREV } from '../agent/codec/chain.ts';
import { buildTree, proofFor, verifyInclusion } from '../agent/chain/merkle.ts';
import { openPostgresAnchorLedger, openPostgresLedgerReader, type PostgresAnchorLedger } from '../agent/gateway/anchor-ledger-postgres.ts';
import { proofFromLedger } from '../agent/chain/proofs.ts';
import { openPostgresStore } from '../agent/gateway/store-postgres.ts';
import { isIopError } from '../agent/errors.ts';
import { postgresBin, startPostgres, type Postgres } from '../harness/postgres.ts';
import { testIf } from './helpers/requires.ts';
import { LEDGER_DEVICE as DEVICE, chainedReadings as readings } from './helpers/ledger.ts';
import { sleep } from './helpers/system.ts';
import { runCli } from './helpers/cli.ts';
import pg from 'pg';

const NO_POSTGRES = postgresBin() ? undefined : 'needs PostgreSQL (apt-get install postgresql)';
const EPOCH_MS = 10_000;
const CONTRACT = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
let server: Postgres | undefined;
test.before(async () => {
  if (!NO_POSTGRES) server = await startPostgres();
});
test.after(async () => server?.stop());

async function opened(epochS = EPOCH_MS / 1000): Promise<{ url: string; ledger: PostgresAnchorLedger }> {
  const url = await server!.createDatabase();
  return { url, ledger: await openPostgresAnchorLedger(url, { epochS }) };
}

async function refusal(pending: Promise<unknown>): Promise<string> {
  try {
    await pending;
  } catch (err) {
    assert.ok(isIopError(err, 'CONFIG'));
    return (err as Error).message;
  }
  throw new Error('not refused');
}

testIf(NO_POSTGRES, 'each stored reading is in exactly one epoch, built once after its end; proofs lead to the recorded root', async () => {
  const { url, ledger } = await opened();
  const store = await openPostgresStore(url, { gapTimeoutMs: 60_000 });
  try {
    const t0 = 100 * EPOCH_MS;
    assert.equal(await ledger.buildDue(t0 + 1, 1000), []); // anchoring starts in epoch 100
    const first = readings(5, 0, GENESIS_PREV, (i) => t0 + i * 1000);
    await store.acceptAll(first);
    assert.equal(await ledger.buildDue(t0 + EPOCH_MS + 500, 1000), [], 'not before the end plus the grace');
    const built = await ledger.buildDue(t0 + EPOCH_MS + 1500, 1000);
    assert.equal(built.map((e) => [e.epoch, e.leaves, e.state]), [[100, 5, 'built']]);
    assert.is(built[0]!.root, buildTree(first).root);
    // Committed after epoch 100 was built: into 101 with the readings of 101; 102 has none.
    const late = readings(1, 5, first[4]!.hash, () => t0 + 9_999);
    const next = readings(3, 6, late[0]!.hash, (i) => t0 + EPOCH_MS + 2000 + i);
    await store.acceptAll([...late, ...next]);
    assert.equal((await ledger.buildDue(t0 + 3 * EPOCH_MS + 1500, 1000)).map((e) => [e.epoch, e.leaves]), [[101, 4]]);
    assert.is(await ledger.epochOf(DEVICE, 5), 101);
    assert.equal(await ledger.buildDue(t0 + 3 * EPOCH_MS + 1500, 1000), [], 'built once');
    // Another process opening the database to read proofs (proof, verify --anchored)
    // finds the leaves; proofs verify against the roots.
    const other = await openPostgresLedgerReader(url);
    const trees = new Map();
    for (let seq = 0; seq < 9; seq++) {
      const proof = await proofFromLedger(other, DEVICE, seq, trees);
      assert.is(proof.root, (await ledger.epoch(proof.epoch))!.root);
      assert.equal(proof, { ...proofFor(buildTree(await ledger.leavesOf(proof.epoch)), proof.epoch, (await ledger.leafOf(DEVICE, seq))!), anchored: null });
      assert.ok(verifyInclusion(proof.root, proof.leaf, proof.proof), `seq ${seq}`);
      assert.not.ok(verifyInclusion(proof.root, { ...proof.leaf, seq: seq + 100 }, proof.proof));
    }
    await proofFromLedger(other, DEVICE, 99).then(() => assert.unreachable('proved'), (err: Error) => assert.match(err.message, /in no anchored epoch yet/));
    await other.close();
  } finally {
    await ledger.close();
    await store.close();
  }
});

testIf(NO_POSTGRES, 'proof --db: the proof of a reading from the database and where it was anchored; a database where no gateway anchored is refused and left alone', async () => {
  const { url, ledger } = await opened();
  const store = await openPostgresStore(url, { gapTimeoutMs: 60_000 });
  try {
    const t0 = 200 * EPOCH_MS;
    await ledger.buildDue(t0 + 1, 1000);
    await store.acceptAll(readings(4, 0, GENESIS_PREV, (i) => t0 + i * 1000));
    const [record] = await ledger.buildDue(t0 + EPOCH_MS + 1500, 1000);
    const tx = '0x' + 'cd'.repeat(32);
    await ledger.update(record!.epoch, { state: 'mined', tx, block: 7, chainId: 31337, contract: CONTRACT });
    const run = await runCli(['proof', '--db', url, '--device', DEVICE, '--seq', '2', '--json']);
    assert.is(run.code, 0, run.stderr);
    const proof = JSON.parse(run.stdout.toString());
    assert.is(proof.root, record!.root);
    assert.ok(verifyInclusion(record!.root, proof.leaf, proof.proof));
    assert.equal(proof.anchored, { chainId: 31337, contract: CONTRACT, transaction: tx, block: 7, state: 'mined' });
    const text = await runCli(['proof', '--db', url, '--device', DEVICE, '--seq', '2']);
    assert.match(text.stdout.toString(), new RegExp(`root +${record!.root}`));
    const missing = await runCli(['proof', '--db', url, '--device', DEVICE, '--seq', '9']);
    assert.is(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /seq 9 of \S+ is in no anchored epoch yet/);
  } finally {
    await ledger.close();
    await store.close();
  }
  const empty = await server!.createDatabase();
  const refused = await runCli(['proof', '--db', empty, '--device', DEVICE, '--seq', '0']);
  assert.is.not(refused.code, 0);
  assert.match(refused.stderr, /has no anchoring ledger: no gateway on this database anchored/);
  const db = new pg.Client({ connectionString: empty });
  await db.connect();
  const tables = (await db.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0].n;
  await db.end();
  assert.is(tables, 0, 'reading proofs made no tables');
  const notUrl = await runCli(['proof', '--db', '/var/lib/x', '--device', DEVICE, '--seq', '0']);
  assert.match(notUrl.stderr, /--db takes a postgres:\/\/ URL/);
});

testIf(NO_POSTGRES, 'two gateways building at once: every epoch built once, every reading in one epoch', async () => {
  const { url, ledger: a } = await opened();
  const b = await openPostgresAnchorLedger(url, { epochS: EPOCH_MS / 1000 });
  const store = await openPostgresStore(url, { gapTimeoutMs: 60_000 });
  try {
    const t0 = 200 * EPOCH_MS;
    await a.buildDue(t0, 1000);
    // 40 readings over 8 epochs, then both build all of them at the same moment.
    await store.acceptAll(readings(40, 0, GENESIS_PREV, (i) => t0 + i * 2000));
    const [builtA, builtB] = await Promise.all([a.buildDue(t0 + 9 * EPOCH_MS + 1500, 1000), b.buildDue(t0 + 9 * EPOCH_MS + 1500, 1000)]);
    const epochs = [...builtA, ...builtB].map((e) => e.epoch).sort((x, y) => x - y);
    assert.equal(epochs, [200, 201, 202, 203, 204, 205, 206, 207]);
    assert.is([...builtA, ...builtB].reduce((n, e) => n + e.leaves, 0), 40);
    for (let seq = 0; seq < 40; seq++) assert.is(await a.epochOf(DEVICE, seq), 200 + Math.floor(seq / 5));
    assert.equal((await a.unfinished()).map((e) => e.epoch), epochs);
  } finally {
    await a.close();
    await b.close();
    await store.close();
  }
});

testIf(NO_POSTGRES, 'one lease holder at a time; the next takes over once the holder stops renewing; its pending transaction is there', async () => {
  const { url, ledger: a } = await opened();
  const b = await openPostgresAnchorLedger(url, { epochS: EPOCH_MS / 1000 });
  const store = await openPostgresStore(url, { gapTimeoutMs: 60_000 });
  try {
    // The callers' clocks (nowMs) disagree wildly: the database's clock decides.
    assert.ok(await a.claimLease('a', 0, 1500));
    assert.not.ok(await b.claimLease('b', 10 ** 13, 1500));
    assert.ok(await a.claimLease('a', 0, 1500), 'renewed');
    // a records its transaction, then dies (stops renewing).
    await store.acceptAll(readings(2, 0, GENESIS_PREV, () => 300 * EPOCH_MS + 1));
    await a.buildDue(300 * EPOCH_MS, 0);
    const [record] = await a.buildDue(301 * EPOCH_MS + 1, 0);
    await a.update(record!.epoch, { state: 'sending', nonce: 7, sends: 1, chainId: 31337, contract: CONTRACT });
    await a.update(record!.epoch, { state: 'sent', tx: '0x' + 'ab'.repeat(32) });
    await a.close();
    await sleep(1700);
    assert.ok(await b.claimLease('b', 0, 1500), 'taken over');
    const [pending] = await b.unfinished();
    assert.equal({ ...pending, root: undefined }, { ...record!, root: undefined, state: 'sent', nonce: 7, sends: 1, chainId: 31337, contract: CONTRACT, tx: '0x' + 'ab'.repeat(32) });
  } finally {
    await b.close();
    await store.close();
  }
});

testIf(NO_POSTGRES, 'a changed epoch length, another chain, contract or chain key are refused with the reason', async () => {
  const { url, ledger } = await opened(3600);
  try {
    const account = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';
    await ledger.bindChain(31337, CONTRACT, account);
    await ledger.bindChain(31337, CONTRACT.toLowerCase(), account.toLowerCase());
    assert.match(await refusal(ledger.bindChain(1, CONTRACT, account)), /anchor on chain 31337/);
    assert.match(await refusal(ledger.bindChain(31337, CONTRACT, '0x70997970C51812dc3A010C7d01b50e0d17dc79C8')),
      /anchor from 0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266; this gateway's chain key is 0x7099.*same --chain-key/);
    try {
      await openPostgresAnchorLedger(url, { epochS: 60 });
      assert.unreachable();
    } catch (err) {
      assert.ok(isIopError(err, 'CONFIG'));
      assert.match((err as Error).message, /epochs of 3600 s; --epoch-s 60 would renumber them/);
    }
  } finally {
    await ledger.close();
  }
});

testIf(NO_POSTGRES, 'pairings queued by one gateway are relayed from the shared table, in order', async () => {
  const { url, ledger: a } = await opened();
  const b = await openPostgresAnchorLedger(url, { epochS: EPOCH_MS / 1000 });
  try {
    const claim = { owner: '0x' + '11'.repeat(20), previousOwner: '0x' + '00'.repeat(20), expires: 1, signature: '0x' + '22'.repeat(65) };
    await a.queuePairing({ device: 'd1', nonce: '0x01', claim });
    await b.queuePairing({ device: 'd2', nonce: '0x02', claim });
    await b.queuePairing({ device: 'd1', nonce: '0x01', claim }); // the same claim twice: once
    assert.equal((await b.pairings('pending')).map((p) => p.device), ['d1', 'd2']);
    await b.updatePairing('d1', '0x01', 'sent', '0xaa');
    assert.equal(await a.pairings('sent'), [{ device: 'd1', nonce: '0x01', claim, state: 'sent', tx: '0xaa' }]);
  } finally {
    await a.close();
    await b.close();
  }
});

test.run();
