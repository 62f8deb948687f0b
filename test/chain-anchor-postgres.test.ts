// Anchoring from the scale-out deployment: two gateway processes on one PostgreSQL
// database (one shared subscription, one shared chain key), three boxes, a real Mosquitto
// and the local EDR chain, epochs of 3 s. The gateway holding the anchoring lease is
// killed -9 while its epoch's transaction waits in the node's pool: the next holder finds
// the transaction in the database and waits for it rather than sending again. Every epoch
// is anchored exactly once (Anchored events counted by the test's own viem client), and
// every stored reading's proof verifies against the root `rootOf` returns.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createPublicClient, http, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { REGISTRY_ABI } from '../agent/chain/artifact.ts';
import { ChainClient } from '../agent/chain/client.ts';
import { buildTree, proofFor, verifyInclusion } from '../agent/chain/merkle.ts';
import { DEV_KEYS, evmMissing, startEvm, type Evm } from '../harness/evm.ts';
import { postgresBin, startPostgres, type Postgres } from '../harness/postgres.ts';
import { boxConfig, sleep, testDeployment, until, type Running } from './helpers/system.ts';
import { jsonLines, runCli } from './helpers/cli.ts';

const missing = postgresBin() ? await evmMissing() : 'needs PostgreSQL (apt-get install postgresql)';
const { dir, broker, launch } = testDeployment(test);
const EPOCH_S = 3;
let evm: Evm | undefined;
let postgres: Postgres | undefined;
test.after(async () => {
  await evm?.stop();
  await postgres?.stop();
});

interface EpochRow { epoch: number; root: string; state: string; tx: string | null }

test('two gateways on PostgreSQL, the anchoring one killed -9 with its transaction in the pool: every epoch anchored once, every reading proven', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  postgres = await startPostgres();
  const url = await postgres.createDatabase();
  evm = await startEvm();
  const chain = evm;
  const reader = createPublicClient({ transport: http(chain.directUrl) });
  // One key for both gateways: the next lease holder checks the nonce the last one recorded.
  const keyFile = join(dir.path, 'chain.key');
  writeFileSync(keyFile, DEV_KEYS[0] + '\n', { mode: 0o600 });
  const contract = (await (await ChainClient.connect(chain.url, privateKeyToAccount(DEV_KEYS[0]))).deploy()).contract;
  const gwDir = join(dir.path, 'gw');
  const gateway = (name: string) => launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--db', url, '--allow-any',
    '--session', `iop-anchor-${name}`, '--chain-rpc', chain.url, '--chain-contract', contract, '--chain-key', keyFile,
    '--epoch-s', String(EPOCH_S), '--chain-confirmations', '1000']);
  const db = new pg.Client({ connectionString: url });
  const epochs = async (): Promise<EpochRow[]> => {
    try {
      return (await db.query('SELECT epoch::int, root, state, tx FROM anchor_epochs ORDER BY epoch')).rows as EpochRow[];
    } catch {
      return []; // not migrated yet
    }
  };
  const gateways: Record<string, Running> = {};
  try {
    // One after the other: the first to start takes the lease, so the test knows which.
    gateways.a = gateway('a');
    await until('gateway a anchoring', () => /anchoring on chain/.test(gateways.a!.stderr()) && /connected/.test(gateways.a!.stderr()), 30_000);
    gateways.b = gateway('b');
    await until('gateway b connected', () => /connected/.test(gateways.b!.stderr()), 30_000);
    await db.connect();
    const boxes = ['box-1', 'box-2', 'box-3'].map((name) =>
      launch(['run', '--config', boxConfig(dir.path, name, {}, { sampling: { intervalMs: 300 } }), '--broker', broker.url]));
    await until('two epochs anchored', async () => (await epochs()).filter((e) => e.state === 'mined').length >= 2, 40_000, 250);

    // Blocks stop: the next epoch's transaction waits in the pool; then the holder dies.
    await chain.rpc('evm_setAutomine', [false]);
    let pending: EpochRow | undefined;
    try {
      await until('an epoch sent, its transaction in the pool', async () => {
        for (const e of (await epochs()).filter((r) => r.state === 'sent')) {
          if (!(await reader.getTransactionReceipt({ hash: e.tx as Hex }).catch(() => undefined))) pending = e;
        }
        return pending !== undefined;
      }, 30_000, 100);
      await gateways.a!.stop('SIGKILL');
      // b takes the lease once a's runs out (a few seconds) and runs rounds with the
      // transaction still pending: a newer epoch built by b, the pending one untouched.
      await until('b anchoring', () => /anchoring on chain/.test(gateways.b!.stderr()), 30_000, 100);
      await until('b built a newer epoch', () => new RegExp(`epoch (?!${pending!.epoch}:)\\d+: root`).test(gateways.b!.stderr()), 30_000, 100);
      // a comes back only now: started at once, it could win the expired lease before b.
      gateways.a = gateway('a');
      const row = (await epochs()).find((e) => e.epoch === pending!.epoch)!;
      assert.equal([row.state, row.tx], ['sent', pending!.tx], 'the successor waits for the recorded transaction');
    } finally {
      await chain.rpc('evm_setAutomine', [true]);
      await chain.rpc('evm_mine');
    }
    await until('the pending epoch mined', async () => (await epochs()).find((e) => e.epoch === pending!.epoch)?.state === 'mined', 30_000, 200);
    await sleep(2 * EPOCH_S * 1000);
    for (const box of boxes) assert.is((await box.stop()).code, 0);
    // Every stored reading in an epoch, every epoch in a block.
    await until('every reading anchored', async () => {
      const { rows } = await db.query(`SELECT (SELECT count(*) FROM readings)::int AS readings, (SELECT count(*) FROM anchor_leaves)::int AS leaves,
        (SELECT count(*) FROM anchor_epochs WHERE state != 'mined')::int AS waiting`);
      const n = rows[0] as { readings: number; leaves: number; waiting: number };
      return n.readings > 0 && n.readings === n.leaves && n.waiting === 0;
    }, 40_000, 250);

    const built = await epochs();
    const logs = await reader.getContractEvents({ address: contract, abi: REGISTRY_ABI, eventName: 'Anchored', fromBlock: 0n });
    const anchored = logs.map((l) => l.args as { epoch: bigint; root: string });
    assert.equal(anchored.map((a) => Number(a.epoch)).sort((x, y) => x - y), built.map((e) => e.epoch), 'each epoch anchored exactly once');
    for (const a of anchored) assert.is(a.root, built.find((e) => e.epoch === Number(a.epoch))!.root);

    // The proofs: trees from the leaves in the database, leaves recomputed from the stored
    // messages, roots from the contract.
    const { rows } = await db.query(`SELECT r.device, r.seq::int, r.message, a.epoch::int FROM readings r JOIN anchor_leaves a USING (device, seq)`);
    const readings = rows as { device: string; seq: number; message: Buffer; epoch: number }[];
    for (const e of built) {
      const leaves = (await db.query('SELECT device, seq::int, hash FROM anchor_leaves WHERE epoch = $1', [e.epoch])).rows as { device: string; seq: number; hash: Buffer }[];
      const tree = buildTree(leaves);
      const root = await reader.readContract({ address: contract, abi: REGISTRY_ABI, functionName: 'rootOf', args: [BigInt(e.epoch)] }) as Hex;
      for (const r of readings.filter((x) => x.epoch === e.epoch)) {
        const leaf = { hash: createHash('sha256').update(r.message).digest(), device: r.device, seq: r.seq };
        const proof = proofFor(tree, e.epoch, leaf);
        assert.ok(verifyInclusion(root, { ...leaf, hash: '0x' + leaf.hash.toString('hex') }, proof.proof), `seq ${r.seq} of ${r.device} under epoch ${e.epoch}`);
      }
    }
    // The CLI on the database: proof --db, and verify --anchored --gateway-db of one box's
    // readings as stored.
    const device = readings[0]!.device;
    const proofRun = await runCli(['proof', '--db', url, '--device', device, '--seq', '1', '--json']);
    assert.is(proofRun.code, 0, proofRun.stderr);
    const proof = JSON.parse(proofRun.stdout.toString());
    assert.is(proof.anchored.contract.toLowerCase(), contract.toLowerCase());
    assert.is(proof.root, await reader.readContract({ address: contract, abi: REGISTRY_ABI, functionName: 'rootOf', args: [BigInt(proof.epoch)] }));
    const exported = join(dir.path, 'export.cbor');
    const own = readings.filter((r) => r.device === device).sort((a, b) => a.seq - b.seq);
    writeFileSync(exported, Buffer.concat(own.map((r) => r.message)));
    const verified = await runCli(['verify', '--anchored', '--rpc', chain.url, '--contract', contract, '--gateway-db', url, exported]);
    assert.is(verified.code, 0, verified.stderr);
    assert.equal(jsonLines(verified.stdout).map((l) => [l.seq, l.anchored?.epoch === own[l.seq]!.epoch]), own.map((r) => [r.seq, true]));
    const devices = new Set(readings.map((r) => r.device)).size;
    console.log(`  ${readings.length} readings of ${devices} boxes in ${built.length} epochs, each anchored once; epoch ${pending!.epoch} sent by a, mined after b took over`);
    assert.is(devices, 3);
    assert.ok(readings.length >= 30, `${readings.length} readings`);
    for (const name of ['a', 'b']) {
      const result = await gateways[name]!.stop();
      assert.is(result.code, 0, result.stderr);
      assert.ok(!result.stderr.includes(DEV_KEYS[0].slice(2)), 'the chain key is never logged');
    }
  } catch (err) {
    (err as Error).message += Object.entries(gateways).map(([name, g]) => `\n--- gateway ${name} (tail) ---\n${g.stderr().split('\n').slice(-25).join('\n')}`).join('');
    throw err;
  } finally {
    await db.end().catch(() => undefined);
  }
});

test.run();
