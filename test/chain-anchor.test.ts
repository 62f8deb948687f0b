// Anchoring end to end: three boxes, a real Mosquitto, a gateway anchoring every 5 s on a
// local EDR chain. Every reading's proof verifies against the root read from the contract
// by the test's own viem call; a pairing typed on a box's console reaches ownerOf. Then
// the faults: the RPC down for three epochs, the gateway killed -9 with its transaction
// in the pool, a dropped transaction and a reorg.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Wallet } from 'ethers';
import { createPublicClient, http, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { REGISTRY_ABI } from '../agent/chain/artifact.ts';
import { ChainClient } from '../agent/chain/client.ts';
import { verifyInclusion } from '../agent/chain/merkle.ts';
import { proofFromLedger } from '../agent/chain/proofs.ts';
import { SqliteAnchorLedger } from '../agent/gateway/anchor-ledger.ts';
import { DEV_KEYS, evmMissing, startEvm, type Evm } from '../harness/evm.ts';
import { runCli } from './helpers/cli.ts';
import { fieldPairing } from './helpers/field-session.ts';
import { ptyPair, socatMissing, type PtyPair } from './helpers/pty.ts';
import { boxConfig, deviceId, sleep, testDeployment, until, type Running } from './helpers/system.ts';

const missing = await evmMissing();
const noSocat = socatMissing();
const { dir, broker, launch } = testDeployment(test);
const gwDir = join(dir.path, 'gateway');
const EPOCH_S = 5;
let evm: Evm;
let contract: `0x${string}`;
let keyFile: string;
let gateway: Running;
let pty: PtyPair | undefined;
const boxes: string[] = [];
// The test's own reader: nothing of the gateway's code path.
let reader: ReturnType<typeof createPublicClient>;
const rootOnChain = (epoch: number) => reader.readContract({ address: contract, abi: REGISTRY_ABI, functionName: 'rootOf', args: [BigInt(epoch)] }) as Promise<Hex>;

function startGateway(): Running {
  return launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any', '--no-share',
    '--chain-rpc', evm.url, '--chain-contract', contract, '--chain-key', keyFile, '--epoch-s', String(EPOCH_S), '--chain-confirmations', '1000']);
}

interface EpochRow { epoch: number; root: string; state: string; tx: string | null; leaves: number }
function epochs(): EpochRow[] {
  const db = new DatabaseSync(join(gwDir, 'gateway.db'), { readOnly: true, timeout: 10_000 });
  try {
    return db.prepare('SELECT epoch, root, state, tx, leaves FROM anchor_epochs ORDER BY epoch').all() as unknown as EpochRow[];
  } catch {
    return [];
  } finally {
    db.close();
  }
}

async function anchoredEvents(): Promise<{ epoch: number; root: string; block: bigint; index: number }[]> {
  const logs = await reader.getContractEvents({ address: contract, abi: REGISTRY_ABI, eventName: 'Anchored', fromBlock: 0n });
  return logs.map((l) => ({ epoch: Number((l.args as { epoch: bigint }).epoch), root: (l.args as { root: string }).root, block: l.blockNumber, index: l.logIndex }));
}

/**
 * Every reading the gateway stored in an epoch that is in a block: its leaf recomputed
 * from the stored message bytes, its proof from the ledger, the root from the contract
 * by the test's own client. And none stored before the last such epoch's end left out.
 */
async function proveAll(): Promise<{ readings: number; devices: number }> {
  const db = new DatabaseSync(join(gwDir, 'gateway.db'), { readOnly: true, timeout: 10_000 });
  const ledger = new SqliteAnchorLedger(gwDir, {});
  try {
    const mined = new Set(epochs().filter((e) => e.state === 'mined' || e.state === 'final').map((e) => e.epoch));
    const rows = db.prepare('SELECT r.device, r.seq, r.message, a.epoch FROM readings r JOIN anchor_leaves a ON a.device = r.device AND a.seq = r.seq')
      .all() as { device: string; seq: number; message: Uint8Array; epoch: number }[];
    const checked = rows.filter((r) => mined.has(r.epoch));
    const roots = new Map<number, Hex>();
    const trees = new Map();
    for (const row of checked) {
      const proof = await proofFromLedger(ledger, row.device, row.seq, trees);
      assert.is(proof.epoch, row.epoch);
      if (!roots.has(proof.epoch)) roots.set(proof.epoch, await rootOnChain(proof.epoch));
      const leaf = { hash: '0x' + createHash('sha256').update(row.message).digest('hex'), device: row.device, seq: row.seq };
      assert.ok(verifyInclusion(roots.get(proof.epoch)!, leaf, proof.proof), `seq ${row.seq} of ${row.device}`);
      assert.is(proof.anchored?.contract?.toLowerCase(), contract.toLowerCase());
    }
    // The readings of an epoch that ended are all in it or an earlier one: none left out.
    const ended = Math.max(...mined);
    const unanchored = db.prepare(`SELECT COUNT(*) AS n FROM readings r WHERE r.received_ms < ? AND NOT EXISTS
      (SELECT 1 FROM anchor_leaves a WHERE a.device = r.device AND a.seq = r.seq)`).get((ended + 1) * EPOCH_S * 1000) as { n: number };
    assert.is(unanchored.n, 0);
    return { readings: checked.length, devices: new Set(checked.map((r) => r.device)).size };
  } finally {
    ledger.close();
    db.close();
  }
}

const chainTest = (name: string, fn: () => Promise<void>) => test(name, async () => {
  if (missing) return console.log(`skipped "${name}": ${missing}`);
  try {
    await fn();
  } catch (err) {
    // What the gateway said is the first thing to read when anchoring stalls.
    (err as Error).message += `\n--- gateway log (tail) ---\n${gateway?.stderr().split('\n').slice(-40).join('\n')}`;
    throw err;
  }
});

test.before(async () => {
  if (missing) return;
  evm = await startEvm();
  reader = createPublicClient({ transport: http(evm.directUrl) });
  keyFile = join(dir.path, 'chain.key');
  writeFileSync(keyFile, DEV_KEYS[0] + '\n', { mode: 0o600 });
  contract = (await (await ChainClient.connect(evm.url, privateKeyToAccount(DEV_KEYS[0]))).deploy()).contract;
});

test.after(async () => {
  await pty?.unplug();
  await evm?.stop();
});

chainTest('every reading of three boxes is provable against the root the contract holds; a console pairing reaches ownerOf', async () => {
  gateway = startGateway();
  await until('gateway connected', () => /anchoring on chain/.test(gateway.stderr()) && /connected/.test(gateway.stderr()), 20_000);
  if (!noSocat) pty = await ptyPair(dir.path);
  for (const name of ['box-a', 'box-b', 'box-c']) {
    const extra = name === 'box-a' && pty ? { console: { tty: pty.box } } : {};
    boxes.push(join(dir.path, name));
    launch(['run', '--config', boxConfig(dir.path, name, {}, { ...extra, sampling: { intervalMs: 300 } }), '--broker', broker.url]);
  }
  let owner: Wallet | undefined;
  if (pty) {
    owner = Wallet.createRandom() as unknown as Wallet;
    for (let i = 0; (await runCli(['console', pty.tech, 'id'], { timeoutMs: 20_000 })).code !== 0; i++) {
      if (i > 100) throw new Error('the console never answered');
      await sleep(100);
    }
    const session = await fieldPairing(pty.tech, owner);
    assert.is(session.code, 0, session.stderr);
  } else {
    console.log(`pairing part skipped: ${noSocat}`);
  }
  // Two full epochs with readings, anchored.
  await until('two epochs anchored', () => epochs().filter((e) => e.state === 'mined').length >= 2, 40_000, 250);
  const checked = await proveAll();
  assert.ok(checked.readings >= 20, `${checked.readings} readings in mined epochs`);
  assert.is(checked.devices, 3);
  assert.ok(!gateway.stderr().includes(DEV_KEYS[0].slice(2)), 'the chain key is never logged');

  // The CLI: proof --json for one reading, then verify --anchored of a box's export with it.
  const device = await deviceId(boxes[1]!);
  const proofRun = await runCli(['proof', '--state-dir', gwDir, '--device', device, '--seq', '2', '--json']);
  assert.is(proofRun.code, 0, proofRun.stderr);
  const proof = JSON.parse(proofRun.stdout.toString());
  assert.equal(Object.keys(proof).sort(), ['anchored', 'epoch', 'leaf', 'proof', 'root']);
  assert.is(proof.anchored.chainId, evm.chainId);
  assert.ok(/^0x[0-9a-f]{64}$/.test(proof.anchored.transaction));
  // The complete messages as the gateway stored them (the box frees what was receipted).
  const exported = join(dir.path, 'export.cbor');
  const store = new DatabaseSync(join(gwDir, 'gateway.db'), { readOnly: true, timeout: 10_000 });
  const messages = store.prepare('SELECT message FROM readings WHERE device = ? AND seq <= 2 ORDER BY seq').all(device) as { message: Uint8Array }[];
  store.close();
  writeFileSync(exported, Buffer.concat(messages.map((m) => m.message)));
  const verified = await runCli(['verify', '--anchored', '--rpc', evm.url, '--contract', contract, '--gateway-state', gwDir, exported]);
  assert.is(verified.code, 0, verified.stderr);
  assert.equal(verified.stdout.toString().trim().split('\n').map((l) => JSON.parse(l).anchored?.epoch !== undefined), [true, true, true]);
  // With a proof file (what `proof --json` printed) for seq 2 alone; a proof altered by
  // one hash fails with the reason.
  const proofFile = join(dir.path, 'proof.jsonl');
  writeFileSync(proofFile, proofRun.stdout);
  const single = join(dir.path, 'seq2.cbor');
  writeFileSync(single, messages[2]!.message);
  const withFile = await runCli(['verify', '--anchored', '--rpc', evm.url, '--contract', contract, '--proof', proofFile, single]);
  assert.is(withFile.code, 0, withFile.stderr);
  assert.is(JSON.parse(withFile.stdout.toString()).anchored.root, await rootOnChain(proof.epoch));
  const altered = { ...proof, proof: proof.proof.length ? ['0x' + 'ab'.repeat(32), ...proof.proof.slice(1)] : ['0x' + 'ab'.repeat(32)] };
  writeFileSync(proofFile, JSON.stringify(altered) + '\n');
  const refused = await runCli(['verify', '--anchored', '--rpc', evm.url, '--contract', contract, '--proof', proofFile, single]);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /not included under the root of epoch \d+ on chain/);
  const noProof = await runCli(['verify', '--anchored', '--rpc', evm.url, '--contract', contract, '--proof', proofFile, exported]);
  assert.is(noProof.code, 1);
  assert.match(noProof.stderr, /message 0 \(byte 0\), seq 0: no inclusion proof for seq 0 of/);

  if (owner) {
    await until('pairing on chain', async () => (await reader.readContract({ address: contract, abi: REGISTRY_ABI, functionName: 'ownerOf', args: [await deviceId(boxes[0]!)] })) === owner!.address, 30_000, 250);
  }
});

const ZERO = '0x' + '0'.repeat(64);
const lastEpoch = () => Math.max(0, ...epochs().map((e) => e.epoch));
const epochRow = (epoch: number) => epochs().find((e) => e.epoch === epoch);
/** An epoch whose transaction is sent and waits in the node's pool (automine off). */
async function pendingEpoch(): Promise<EpochRow | undefined> {
  for (const e of epochs().filter((r) => r.state === 'sent')) {
    if (!(await reader.getTransactionReceipt({ hash: e.tx as Hex }).catch(() => undefined))) return e;
  }
  return undefined;
}

chainTest('the RPC down for three epochs: all three are anchored, in order, once it is back', async () => {
  const before = lastEpoch();
  await evm.down();
  let waiting: EpochRow[] = [];
  try {
    await until('three epochs built while the RPC is down', () => (waiting = epochs().filter((e) => e.epoch > before)).length >= 3, 40_000, 250);
    for (const e of waiting) assert.is.not(e.state, 'mined');
  } finally {
    await evm.up();
  }
  for (const e of waiting) assert.is(await rootOnChain(e.epoch), ZERO);
  assert.match(gateway.stderr(), /chain RPC unreachable/);
  const wanted = waiting.slice(0, 3).map((e) => e.epoch);
  await until('the three epochs anchored', () => wanted.every((epoch) => epochRow(epoch)?.state === 'mined'), 60_000, 250);
  const events = (await anchoredEvents()).filter((e) => wanted.includes(e.epoch));
  events.sort((a, b) => (a.block === b.block ? a.index - b.index : a.block < b.block ? -1 : 1));
  assert.equal(events.map((e) => e.epoch), wanted);
  for (const e of events) assert.is(e.root, epochRow(e.epoch)!.root);
});

chainTest('the gateway killed -9 while its transaction waits for a block: the epoch is anchored exactly once', async () => {
  await evm.rpc('evm_setAutomine', [false]);
  let found: EpochRow | undefined;
  try {
    await until('an epoch sent, its transaction in the pool', async () => (found = await pendingEpoch()) !== undefined, 30_000, 100);
    const sent = found!;
    await gateway.stop('SIGKILL');
    gateway = startGateway();
    // The new process has run rounds with the transaction still pending: it built a newer epoch.
    await until('the restarted gateway running rounds', () => new RegExp(`epoch (?!${sent.epoch}:)\\d+: root`).test(gateway.stderr()), 30_000, 100);
    assert.is(epochRow(sent.epoch)!.tx, sent.tx);
    await evm.rpc('evm_setAutomine', [true]);
    await evm.rpc('evm_mine');
    await until('the epoch mined', () => epochRow(sent.epoch)?.state === 'mined', 30_000, 100);
    const events = (await anchoredEvents()).filter((e) => e.epoch === sent.epoch);
    assert.is(events.length, 1);
    assert.is(events[0]!.root, sent.root);
    assert.is(epochRow(sent.epoch)!.tx, sent.tx);
    // No second anchoring attempt reached the chain for it either: the key's transactions
    // after the kill are for other epochs.
    const receipt = await reader.getTransactionReceipt({ hash: sent.tx as Hex });
    assert.is(receipt.status, 'success');
  } finally {
    await evm.rpc('evm_setAutomine', [true]);
    await evm.rpc('evm_mine');
  }
});

chainTest('a transaction dropped from the pool is detected and sent again', async () => {
  await evm.rpc('evm_setAutomine', [false]);
  let found: EpochRow | undefined;
  try {
    await until('an epoch sent', async () => (found = await pendingEpoch()) !== undefined, 30_000, 100);
    const sent = found!;
    assert.is(await evm.rpc('hardhat_dropTransaction', [sent.tx]), true);
    assert.is(await reader.getTransaction({ hash: sent.tx as Hex }).catch(() => undefined), undefined);
    // Sent again: the same nonce, so the node holds one transaction for the epoch (with
    // unchanged fees it is byte for byte the same, hash included).
    await until('sent again', async () => new RegExp(`epoch ${sent.epoch}: transaction ${sent.tx} was dropped by the node; sending again`).test(gateway.stderr())
      && epochRow(sent.epoch)!.state === 'sent' && (await reader.getTransaction({ hash: epochRow(sent.epoch)!.tx as Hex }).catch(() => undefined)) !== undefined, 30_000, 100);
    await evm.rpc('evm_setAutomine', [true]);
    await evm.rpc('evm_mine');
    await until('the epoch mined', () => epochRow(sent.epoch)?.state === 'mined', 30_000, 100);
    assert.is(await rootOnChain(sent.epoch), sent.root);
    assert.is((await anchoredEvents()).filter((e) => e.epoch === sent.epoch).length, 1);
  } finally {
    await evm.rpc('evm_setAutomine', [true]);
    await evm.rpc('evm_mine');
  }
});

chainTest('a reorg that takes an anchoring away is detected and the epoch anchored again', async () => {
  const snapshot = await evm.rpc<string>('evm_snapshot');
  const before = lastEpoch();
  await until('an epoch anchored after the snapshot', () => epochs().some((e) => e.epoch > before && e.state === 'mined'), 30_000, 100);
  const mined = epochs().find((e) => e.epoch > before && e.state === 'mined')!;
  assert.is(await rootOnChain(mined.epoch), mined.root);
  assert.is(await evm.rpc('evm_revert', [snapshot]), true);
  assert.is(await rootOnChain(mined.epoch), ZERO);
  await until('anchored again', async () => (await rootOnChain(mined.epoch)) === mined.root, 30_000, 200);
  assert.match(gateway.stderr(), new RegExp(`epoch ${mined.epoch}: transaction 0x[0-9a-f]+ is no longer in the chain`));
  assert.is((await anchoredEvents()).filter((e) => e.epoch === mined.epoch).length, 1);
  // After the outage, the kill -9, the dropped transaction and the reorg: every reading of
  // every epoch in a block still proves against the contract's root, each epoch once.
  await until('the re-anchored epochs mined', () => epochs().filter((e) => e.epoch >= mined.epoch).every((e) => e.state === 'mined'), 30_000, 200);
  const all = await proveAll();
  assert.ok(all.readings > 100, `${all.readings} readings proven`);
  const events = await anchoredEvents();
  assert.is(new Set(events.map((e) => e.epoch)).size, events.length, 'no epoch anchored twice');
  const result = await gateway.stop();
  assert.is(result.code, 0, result.stderr);
  const counters = JSON.parse(result.stdout.toString().trim().split('\n').pop()!);
  assert.ok(counters.anchoring.resent >= 1, JSON.stringify(counters.anchoring));
});

test.run();
