// Rewards on chain: the stake registry and the claim contract deployed with the CLI on a
// local EDR chain; owners stake with viem; the gateway's contribution ledger (through a
// real Mosquitto, with the epoch's clock the test's) reads the stakes from the contract,
// scores one epoch of two boxes' statuses and signed readings, and its anchorer posts the
// epoch's root of cumulative amounts on the claim contract. An owner is paid exactly the
// table's amount (claimed by viem for them, so their balance moves by that alone), another
// claims with `iop-agent rewards claim`; after two more epochs one claim pays exactly the
// difference.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { createPublicClient, createWalletClient, http, parseEther, type Hex, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { REWARDS_ABI, STAKING_ABI } from '../agent/chain/artifact.ts';
import { Anchorer } from '../agent/chain/anchorer.ts';
import { ChainStakes } from '../agent/chain/stakes.ts';
import { GENESIS_PREV, messageHash } from '../agent/codec/chain.ts';
import { signSign1Sync } from '../agent/codec/cose.ts';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import type { EpochTable } from '../agent/contribution/epoch.ts';
import { ContributionLedger } from '../agent/gateway/contribution.ts';
import { RewardRootLedger } from '../agent/gateway/reward-root-ledger.ts';
import { silentLogger } from '../agent/log.ts';
import { DEV_KEYS, evmMissing, startEvm, type Evm } from '../harness/evm.ts';
import { collect, runCli, startCli, tempDir } from './helpers/cli.ts';
import { testBox, type TestBox } from './helpers/contribution.ts';
import { startMosquitto, type Broker } from './helpers/mosquitto.ts';
import { within } from './helpers/pty.ts';

const missing = await evmMissing();
const EPOCH_S = 3600;
const EPOCH = Math.floor(1_795_000_000 / EPOCH_S);
const PER_EPOCH = 6;
const POOL = parseEther('0.001');
const [deployer, ownerA, ownerB, idle] = DEV_KEYS.map((k) => privateKeyToAccount(k));
const a = testBox('chain-rewards-a');
const b = testBox('chain-rewards-b');

const dir = tempDir('iop-chain-rewards-');
let broker: Broker;
let evm: Evm;
let reader: PublicClient;
let client: MqttClient;
let ledger: ContributionLedger;
let anchorer: Anchorer;
let staking: Hex;
let rewards: Hex;
let now = EPOCH * EPOCH_S + 60;

const keyFile = (name: string, key: string) => {
  const path = join(dir.path, name);
  writeFileSync(path, key + '\n', { mode: 0o600 });
  return path;
};

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  await within(ms, what, (async () => {
    while (!(await check())) await new Promise((r) => setTimeout(r, 100));
  })());
}

/** One hash chain per box, PER_EPOCH readings an epoch, five minutes apart. */
function chainOf(box: TestBox, epochs: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev: Uint8Array = GENESIS_PREV;
  for (let seq = 0; seq < epochs * PER_EPOCH; seq++) {
    const time = (EPOCH + Math.floor(seq / PER_EPOCH)) * EPOCH_S + 60 + (seq % PER_EPOCH) * 300;
    const payload = encodeSenmlPack({ time, records: [{ n: 'temperature', u: 'Cel', v: 18 + seq * 0.1 }] });
    const bytes = signSign1Sync({ alg: -8, kid: box.identity.kid, seq, prev }, payload, box.signBytes);
    out.push(bytes);
    prev = messageHash(bytes);
  }
  return out;
}
const readings = { a: chainOf(a, 3), b: chainOf(b, 3) };

const publish = (topic: string, payload: Uint8Array | string) => client.publishAsync(topic, typeof payload === 'string' ? payload : Buffer.from(payload), { qos: 1 });

/** One epoch of evidence: both boxes online; a delivers all its readings, b every other one. */
async function runEpoch(epoch: number): Promise<EpochTable> {
  const index = epoch - EPOCH;
  now = epoch * EPOCH_S + 60;
  const before = ledger.counters.readings;
  for (const box of [a, b]) await publish(`iop/v1/${box.identity.id}/status`, JSON.stringify({ online: true, id: box.identity.id, uplink: 'direct', time: now }));
  const ofA = readings.a.slice(index * PER_EPOCH, (index + 1) * PER_EPOCH);
  const ofB = readings.b.slice(index * PER_EPOCH, (index + 1) * PER_EPOCH).filter((_, i) => i % 2 === 0 || i === PER_EPOCH - 1);
  for (const r of ofA) await publish(`iop/v1/${a.identity.id}/data`, r);
  for (const r of ofB) await publish(`iop/v1/${b.identity.id}/data`, r);
  await until(`epoch ${epoch}'s readings taken in`, () => ledger.counters.readings === before + ofA.length + ofB.length, 20_000);
  now = (epoch + 1) * EPOCH_S + 700;
  return ledger.close(epoch);
}

const rewardsRead = <T>(functionName: string, args: readonly unknown[] = []) => reader.readContract({ address: rewards, abi: REWARDS_ABI, functionName, args }) as Promise<T>;
const ownerRow = (table: EpochTable, owner: string) => table.owners.find((o) => o.owner === owner.toLowerCase())!;

/** The claim sent for the owner by the deployer: the owner's balance moves by the payment alone. */
async function claimFor(owner: Hex, table: EpochTable): Promise<bigint> {
  const row = ownerRow(table, owner);
  const wallet = createWalletClient({ account: deployer!, transport: http(evm.url) });
  const before = await reader.getBalance({ address: owner });
  const hash = await wallet.writeContract({ address: rewards, abi: REWARDS_ABI, functionName: 'claim', args: [owner, BigInt(row.cumulative), row.proof as Hex[]], chain: null });
  assert.is((await reader.waitForTransactionReceipt({ hash })).status, 'success');
  return (await reader.getBalance({ address: owner })) - before;
}

test.before(async () => {
  if (missing) return;
  [broker, evm] = await Promise.all([startMosquitto(), startEvm()]);
  reader = createPublicClient({ transport: http(evm.url) }) as PublicClient;
  const deployerKey = keyFile('deployer.key', DEV_KEYS[0]);
  for (const kind of ['staking', 'rewards'] as const) {
    const deployed = await runCli(['chain', 'deploy', kind, '--rpc', evm.url, '--key', deployerKey, '--json']);
    assert.is(deployed.code, 0, deployed.stderr.toString());
    if (kind === 'staking') staking = JSON.parse(deployed.stdout.toString()).contract;
    else rewards = JSON.parse(deployed.stdout.toString()).contract;
  }
  // The owners stake (b three times a's, the idle owner most of all but has no box); the deployer funds the payouts.
  for (const [account, value] of [[ownerA!, parseEther('1')], [ownerB!, parseEther('3')], [idle!, parseEther('5')]] as const) {
    const wallet = createWalletClient({ account, transport: http(evm.url) });
    const hash = await wallet.writeContract({ address: staking, abi: STAKING_ABI, functionName: 'stake', args: [], value, chain: null });
    assert.is((await reader.waitForTransactionReceipt({ hash })).status, 'success');
  }
  const funding = await createWalletClient({ account: deployer!, transport: http(evm.url) }).sendTransaction({ to: rewards, value: parseEther('1'), chain: null });
  await reader.waitForTransactionReceipt({ hash: funding });

  ledger = new ContributionLedger({
    session: { url: broker.url, clientId: 'chain-rewards-test', tls: {}, keepaliveS: 30, reconnectMinMs: 200, reconnectMaxMs: 1000 } as never,
    stateDir: dir.path, paired: () => [{ device: a.identity.id, owner: ownerA!.address }, { device: b.identity.id, owner: ownerB!.address }],
    locations: new Map(), stakes: new ChainStakes(evm.url, staking), pool: POOL, epochS: EPOCH_S, jobIssuers: [],
    // The test closes epochs itself: the ledger's own tick never does.
    graceS: 1e9, nowS: () => now, log: silentLogger,
  });
  ledger.start();
  anchorer = new Anchorer({ ledger: new RewardRootLedger(dir.path, { epochS: EPOCH_S }), rpc: evm.url, account: deployer!, contract: rewards, confirmations: 1, log: silentLogger });
  anchorer.start();
  client = await mqtt.connectAsync(broker.url);
});

test.after(async () => {
  await client?.endAsync();
  await anchorer?.stop();
  await ledger?.stop();
  await Promise.all([evm?.stop(), broker?.stop()]);
  dir.remove();
});

const chainTest = (name: string, fn: () => Promise<void>) => test(name, async () => {
  if (missing) return console.log(`skipped "${name}": ${missing}`);
  await within(240_000, name, fn());
});

chainTest('stakes from the contract, the root anchored once, a claim pays the table\'s amount; one claim catches up two epochs', async () => {
  // The chain down when the epoch closes: no table, the epoch stays open for the next try.
  await evm.down();
  const first = EPOCH;
  const failed = await runEpoch(first).then(() => undefined, (err: Error) => err.message);
  assert.match(failed ?? '', /stakes from contract/);
  await evm.up();
  const table = await ledger.close(first);

  const stakes = Object.fromEntries(table.owners.map((o) => [o.owner, o.stake]));
  assert.equal(stakes, { [ownerA!.address.toLowerCase()]: parseEther('1').toString(), [ownerB!.address.toLowerCase()]: parseEther('3').toString(), [idle!.address.toLowerCase()]: parseEther('5').toString() });
  const [rowA, rowB] = [ownerRow(table, ownerA!.address), ownerRow(table, ownerB!.address)];
  assert.ok(BigInt(rowA.reward) > 0n && BigInt(rowB.reward) > 0n);
  assert.is(ownerRow(table, idle!.address).reward, '0', 'stake but no box: nothing');

  await until('the epoch\'s root on the claim contract', async () => (await rewardsRead<Hex>('latestRoot')) === table.root);
  assert.is(await rewardsRead<bigint>('latestEpoch'), BigInt(first));

  // a's claim, sent for a: a's balance moves by the table's amount exactly.
  assert.is(await claimFor(ownerA!.address, table), BigInt(rowA.cumulative));
  // b claims with the CLI, from the table file as published.
  const tableFile = join(dir.path, 'rewards', `${first}.json`);
  const keyB = keyFile('b.key', DEV_KEYS[2]);
  const claimB = ['rewards', 'claim', '--epoch', String(first), '--table', tableFile, '--rpc', evm.url, '--key', keyB, '--contract', rewards, '--json'];
  const byCli = await runCli(claimB);
  assert.is(byCli.code, 0, byCli.stderr.toString());
  const paidB = JSON.parse(byCli.stdout.toString());
  assert.is(paidB.paid, rowB.cumulative);
  assert.is(await rewardsRead<bigint>('claimed', [ownerB!.address]), BigInt(rowB.cumulative));
  assert.not.match(byCli.stdout.toString() + byCli.stderr.toString(), DEV_KEYS[2].slice(2));
  const again = await runCli(claimB);
  assert.is(again.code, 0, again.stderr.toString());
  assert.is(JSON.parse(again.stdout.toString()).paid, '0', 'nothing twice');

  // Two more epochs; a claims once for both.
  await runEpoch(first + 1);
  const third = await runEpoch(first + 2);
  await until('the third epoch\'s root on the claim contract', async () => (await rewardsRead<Hex>('latestRoot')) === third.root);
  const stale = await runCli(claimB);
  assert.is(stale.code, 2);
  assert.match(stale.stderr.toString(), /not the contract's latest .*epoch \d+/);
  const owed = BigInt(ownerRow(third, ownerA!.address).cumulative) - BigInt(rowA.cumulative);
  assert.ok(owed > 0n);
  assert.is(await claimFor(ownerA!.address, third), owed, 'the second claim pays exactly what two epochs added');
  const claims = await reader.getContractEvents({ address: rewards, abi: REWARDS_ABI, eventName: 'Claimed', args: { owner: ownerA!.address }, fromBlock: 0n });
  assert.is(claims.length, 2, 'one claim transaction for the two epochs');

  // One anchoring per epoch, never twice.
  const anchored = await reader.getContractEvents({ address: rewards, abi: REWARDS_ABI, eventName: 'Anchored', fromBlock: 0n });
  assert.equal(anchored.map((e) => Number((e.args as { epoch: bigint }).epoch)), [first, first + 1, first + 2]);
  assert.is(anchorer.counters.sent, 3);
});

chainTest('the gateway process with --stakes-contract and --rewards-contract anchors a table\'s root once, across a restart', async () => {
  // A fresh claim contract, and a gateway state dir holding the first epoch's table as a
  // previous run left it: the process's rewards anchorer takes it from there.
  const deployed = await runCli(['chain', 'deploy', 'rewards', '--rpc', evm.url, '--key', keyFile('deployer.key', DEV_KEYS[0]), '--json']);
  assert.is(deployed.code, 0, deployed.stderr.toString());
  const contract = JSON.parse(deployed.stdout.toString()).contract as Hex;
  const gw = join(dir.path, 'gw-process');
  mkdirSync(join(gw, 'rewards'), { recursive: true });
  copyFileSync(join(dir.path, 'rewards', `${EPOCH}.json`), join(gw, 'rewards', `${EPOCH}.json`));
  const root = (JSON.parse(readFileSync(join(gw, 'rewards', `${EPOCH}.json`), 'utf8')) as EpochTable).root;
  const args = ['gateway', '--broker', broker.url, '--state-dir', gw, '--allow-any', '--no-share', '--chain-rpc', evm.url, '--chain-key', keyFile('gw.key', DEV_KEYS[0]),
    '--stakes-contract', staking, '--rewards-contract', contract, '--epoch-s', String(EPOCH_S), '--chain-confirmations', '1'];
  const latest = () => reader.readContract({ address: contract, abi: REWARDS_ABI, functionName: 'latestRoot' }) as Promise<Hex>;
  for (const run of [1, 2]) {
    const child = startCli(args);
    const done = collect(child, { timeoutMs: 90_000 });
    await until(`run ${run}: the root on the claim contract`, async () => (await latest()) === root);
    if (run === 2) await new Promise((r) => setTimeout(r, 2000)); // a restart has time to (wrongly) send again
    child.kill('SIGTERM');
    const result = await done;
    assert.is(result.code, 0, result.stderr);
    const stats = JSON.parse(result.stdout.toString().trim().split('\n').at(-1)!);
    assert.is(stats.rewardRoots.sent, run === 1 ? 1 : 0, `run ${run}: ${JSON.stringify(stats.rewardRoots)}`);
  }
  const anchored = await reader.getContractEvents({ address: contract, abi: REWARDS_ABI, eventName: 'Anchored', fromBlock: 0n });
  assert.is(anchored.length, 1, 'anchored once across the restart');
});

chainTest('gateway flags: --rewards-contract needs contribution on, --stakes-contract needs --chain-rpc', async () => {
  const gw = join(dir.path, 'gw-flags');
  const base = ['gateway', '--broker', 'mqtt://127.0.0.1:9', '--state-dir', gw, '--allow-any'];
  const noContribution = await runCli([...base, '--chain-rpc', evm.url, '--chain-key', keyFile('gw.key', DEV_KEYS[0]), '--rewards-contract', rewards]);
  assert.is(noContribution.code, 2);
  assert.match(noContribution.stderr.toString(), /--rewards-contract needs contribution on/);
  const noRpc = await runCli([...base, '--stakes-contract', staking]);
  assert.is(noRpc.code, 2);
  assert.match(noRpc.stderr.toString(), /--stakes-contract needs --chain-rpc/);
});

test.run();
