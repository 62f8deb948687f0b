// Contribution and rewards end to end with real processes only: Mosquitto, three
// `iop-agent run` boxes on emulated LoRa radios (RNode KISS over socat ptys, joined through
// the simulated medium: beacons go on radio links, UDP mesh links carry none), one of them
// with the uplink; a real `iop-agent gateway` with its SQLite store, reading stakes from the
// stake registry and anchoring reward roots on the claim contract of a local EDR chain, with
// short epochs (--epoch-s 20 --grace-s 3 --beacon-period-s 10). Owners pair their boxes (claims signed with
// viem) and stake with viem; a job is posted with `iop-agent job post`. The gateway process
// closes an epoch with jobs served, beacons and valid witnesses by itself, publishes its
// table on iop/v1/rewards/<epoch> and anchors its root; one owner claims with viem, another
// with `iop-agent rewards claim`: each is paid exactly the table's amount.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { createPublicClient, createWalletClient, http, parseEther, type Hex, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { REWARDS_ABI, STAKING_ABI } from '../agent/chain/artifact.ts';
import type { EpochTable } from '../agent/contribution/epoch.ts';
import { offsetLocation } from '../agent/contribution/geo.ts';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import { makeClaim, pairTopic } from '../agent/pairing/claim.ts';
import { pairingTypedData, ZERO_ADDRESS, type PairingMessage } from '../agent/pairing/eip712.ts';
import { DEV_KEYS, evmMissing, startEvm, type Evm } from '../harness/evm.ts';
import { runCli } from './helpers/cli.ts';
import { RNodeModem } from './emulators/modems.ts';
import { haveSocat } from './emulators/pty.ts';
import { within } from './helpers/pty.ts';
import { kissLink, radioBoxConfig, radioDeployment } from './helpers/radio-mesh.ts';
import { deviceId, gatewayKey, until, type Running } from './helpers/system.ts';

const EPOCH_S = 20;
/** the boxes' beacon period, s, told to the gateway too */
const BEACON_S = 10;
const POOL = parseEther('0.001');
const HERE = { lat: 48.85, lon: 2.35 };
/** the boxes' places along the medium's x axis, m (all within one another's range) */
const PLACES = [0, 400, 800];
const [deployer, ownerA, ownerB, idle] = DEV_KEYS.map((k) => privateKeyToAccount(k));

const missing = !haveSocat() ? 'needs socat and mosquitto' : await evmMissing();
const deployment = radioDeployment(test);
const { dir, broker, launch } = deployment;
let evm: Evm | undefined;

test.after(async () => {
  await evm?.stop();
});

const keyFile = (name: string, key: string) => {
  const path = join(dir.path, name);
  writeFileSync(path, key + '\n', { mode: 0o600 });
  return path;
};

/** A box config with beacons every `periodS` and readings every `intervalMs`. */
function withContribution(file: string, periodS: number, intervalMs: number): string {
  const config = JSON.parse(readFileSync(file, 'utf8'));
  config.mesh.beaconPeriodS = periodS;
  // Epochs here last seconds, not an hour: a mesh-only box's status, which gives its
  // uptime, must come as often, or one status lost on the radio leaves it at 0 for the run.
  config.mesh.statusEveryMs = periodS * 1000;
  config.sampling.intervalMs = intervalMs;
  writeFileSync(file, JSON.stringify(config));
  return file;
}

/** The owner's pairing claim for a box, signed by the owner (viem) and by the box's key, as the box's console makes it. */
async function pairingClaim(stateDir: string, owner: typeof ownerA): Promise<Uint8Array> {
  const { key, identity } = loadDeviceKey(stateDir, { create: false });
  const message: PairingMessage = { device: identity.id, owner: owner!.address, previousOwner: ZERO_ADDRESS, nonce: `0x${randomBytes(32).toString('hex')}`, expires: Math.floor(Date.now() / 1000) + 900 };
  const typedData = pairingTypedData(message);
  const { EIP712Domain: _, ...types } = typedData.types;
  const signature = await owner!.signTypedData({ domain: typedData.domain, types, primaryType: 'Pairing', message } as never);
  return makeClaim(identity, key, { typedData, signature } as never);
}

const ownerRow = (table: EpochTable, owner: string) => table.owners.find((o) => o.owner === owner.toLowerCase());

/**
 * An epoch the gateway closed with everything the issue asks of one: job slots served,
 * beacons, a witness credited (across owners: a's two boxes witnessing each other earn
 * nothing), every box up (also the uplink box, whose only status is its birth), both owners paid.
 */
function complete(table: EpochTable): boolean {
  const counts = (table.counts ?? {}) as { beacons?: number; witnessesValid?: number };
  return (counts.beacons ?? 0) >= 2 && (counts.witnessesValid ?? 0) >= 1
    && table.devices.some((d) => (d.parts.jobs ?? 0) > 0) && table.devices.some((d) => (d.parts.witnesses ?? 0) > 0)
    && table.devices.length === 3 && table.devices.every((d) => (d.parts.uptime ?? 0) > 0)
    && BigInt(ownerRow(table, ownerA!.address)?.reward ?? '0') > 0n && BigInt(ownerRow(table, ownerB!.address)?.reward ?? '0') > 0n;
}

test('three radio boxes, the gateway process on a local chain: one epoch closed by the gateway, its root anchored, owners paid the table\'s amounts', async () => {
  if (missing) return console.log(`contribution-e2e: skipped, ${missing}`);
  await within(180_000, 'the rewards end to end', (async () => {
    evm = await startEvm();
    const reader = createPublicClient({ transport: http(evm.url) }) as PublicClient;
    const deployerKey = keyFile('deployer.key', DEV_KEYS[0]);
    const contracts: Record<string, Hex> = {};
    for (const kind of ['staking', 'rewards'] as const) {
      const deployed = await runCli(['chain', 'deploy', kind, '--rpc', evm.url, '--key', deployerKey, '--json']);
      assert.is(deployed.code, 0, deployed.stderr.toString());
      contracts[kind] = JSON.parse(deployed.stdout.toString()).contract;
    }
    // Owners stake with viem (b twice a's; the idle owner has no box); the deployer funds the payouts.
    for (const [account, value] of [[ownerA!, parseEther('1')], [ownerB!, parseEther('2')], [idle!, parseEther('5')]] as const) {
      const hash = await createWalletClient({ account, transport: http(evm.url) }).writeContract({ address: contracts.staking!, abi: STAKING_ABI, functionName: 'stake', args: [], value, chain: null });
      assert.is((await reader.waitForTransactionReceipt({ hash })).status, 'success');
    }
    const funding = await createWalletClient({ account: deployer!, transport: http(evm.url) }).sendTransaction({ to: contracts.rewards!, value: parseEther('1'), chain: null });
    await reader.waitForTransactionReceipt({ hash: funding });

    // Three boxes (their keys made now), a job issuer, the boxes' locations.
    const home = join(dir.path, 'boxes');
    const boxDirs = [0, 1, 2].map((i) => join(home, `box${i}`));
    const ids = await Promise.all(boxDirs.map((d) => deviceId(d)));
    const issuer = await deviceId(join(dir.path, 'issuer'));
    const locations = join(dir.path, 'locations.json');
    writeFileSync(locations, JSON.stringify(Object.fromEntries(ids.map((id, i) => [id, offsetLocation(HERE, PLACES[i]!, 0)]))));

    const gwDir = join(dir.path, 'gateway');
    const gwKey = await gatewayKey(gwDir);
    const gateway = launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--no-share',
      '--chain-rpc', evm.url, '--chain-key', keyFile('gw.key', DEV_KEYS[0]), '--chain-confirmations', '1',
      '--stakes-contract', contracts.staking!, '--rewards-contract', contracts.rewards!, '--pool', POOL.toString(),
      '--locations', locations, '--job-issuer', issuer, '--epoch-s', String(EPOCH_S), '--grace-s', '3', '--beacon-period-s', String(BEACON_S)]);
    await until('gateway connected', () => /connected/.test(gateway.stderr()), 20_000);

    const watcher: MqttClient = await connectAsync(broker.url);
    const tables = new Map<number, EpochTable>();
    const owners = new Set<string>();
    watcher.on('message', (topic, payload) => {
      if (topic.startsWith('iop/v1/rewards/')) tables.set(Number(topic.split('/')[3]), JSON.parse(payload.toString()));
      else if (topic.endsWith('/owner') && payload.length) owners.add(topic.split('/')[2]!);
    });
    await watcher.subscribeAsync(['iop/v1/rewards/+', 'iop/v1/+/owner'], { qos: 1 });
    // Boxes 0 and 1 are a's, box 2 is b's: the claims go retained to the gateway, as a box's outbox sends them.
    for (const [i, owner] of [[0, ownerA], [1, ownerA], [2, ownerB]] as const) {
      await watcher.publishAsync(pairTopic(ids[i]!), Buffer.from(await pairingClaim(boxDirs[i]!, owner)), { qos: 1, retain: true });
    }
    await until('the three boxes paired', () => owners.size === 3, 20_000);

    // The job: temperature around here every 10 s, from now on, signed by the issuer.
    const jobFile = join(dir.path, 'job.json');
    const from = Math.floor(Date.now() / 1000);
    writeFileSync(jobFile, JSON.stringify({ id: 'e2e-temp', quantity: { name: 'temperature', unit: 'Cel' }, area: { box: { south: 48.8, west: 2.3, north: 48.9, east: 2.4 } }, intervalS: 10, from, to: from + 3600, rewardPerSlot: '5' }));
    const posted = await runCli(['job', 'post', jobFile, '--broker', broker.url, '--state-dir', join(dir.path, 'issuer')]);
    assert.is(posted.code, 0, posted.stderr.toString());

    // The radios: one channel, all in range; box 0 has the uplink, 1 and 2 reach it over the mesh.
    const channel = deployment.channel({ rangeM: 1000 });
    const paths = PLACES.map((_, i) => join(dir.path, `radio${i}`));
    for (let i = 0; i < 3; i++) await channel.add(paths[i]!, PLACES[i]!, () => new RNodeModem());
    channel.connect();
    const boxes: Running[] = [];
    for (let i = 0; i < 3; i++) {
      const config = radioBoxConfig(home, `box${i}`, [kissLink(paths[i]!)], { gatewayKey: gwKey, ...(i === 0 ? { broker: broker.url } : {}) });
      boxes.push(launch(['run', '--config', withContribution(config, BEACON_S, 5000)]));
    }

    let table: EpochTable | undefined;
    try {
      await until('an epoch closed by the gateway with jobs, beacons and witnesses', () => (table = [...tables.values()].find(complete)) !== undefined, 120_000, 250);
    } catch (err) {
      console.log([gateway, ...boxes].map((b) => b.stderr().slice(-3000)).join('\n---\n'), JSON.stringify([...tables.values()].map((t) => ({ epoch: t.epoch, counts: t.counts, devices: t.devices.map((d) => d.parts) }))));
      throw err;
    }
    // Later epochs close as the boxes go on: stop everything, then claim against the latest
    // root anchored (a cumulative claim: it pays every epoch up to that one).
    for (const box of boxes) await box.stop();
    const anchoredEpoch = async () => Number(await reader.readContract({ address: contracts.rewards!, abi: REWARDS_ABI, functionName: 'latestEpoch' }) as bigint);
    await until(`epoch ${table!.epoch}'s root anchored`, async () => (await anchoredEpoch()) >= table!.epoch, 30_000, 250);
    const stopped = await gateway.stop();
    assert.is(stopped.code, 0, stopped.stderr);
    await watcher.endAsync();

    const latest = await anchoredEpoch();
    const anchoredTable = tables.get(latest) ?? JSON.parse(readFileSync(join(gwDir, 'rewards', `${latest}.json`), 'utf8')) as EpochTable;
    assert.equal(anchoredTable, JSON.parse(readFileSync(join(gwDir, 'rewards', `${latest}.json`), 'utf8')), 'the published table is the one in the state dir');
    assert.is(await reader.readContract({ address: contracts.rewards!, abi: REWARDS_ABI, functionName: 'latestRoot' }), anchoredTable.root);
    assert.is(ownerRow(anchoredTable, idle!.address)?.reward ?? '0', '0', 'stake but no box: nothing');
    console.log(`contribution-e2e: epoch ${table!.epoch} ${JSON.stringify(table!.counts)}; claimed at epoch ${latest}`);
    const rowA = ownerRow(anchoredTable, ownerA!.address)!;
    const rowB = ownerRow(anchoredTable, ownerB!.address)!;
    assert.ok(BigInt(rowA.cumulative) >= BigInt(ownerRow(table!, ownerA!.address)!.cumulative) && BigInt(rowA.cumulative) > 0n);

    // a claims with viem from its own account: its balance moves by the table's amount less the gas.
    const wallet = createWalletClient({ account: ownerA!, transport: http(evm.url) });
    const before = await reader.getBalance({ address: ownerA!.address });
    const hash = await wallet.writeContract({ address: contracts.rewards!, abi: REWARDS_ABI, functionName: 'claim', args: [ownerA!.address, BigInt(rowA.cumulative), rowA.proof as Hex[]], chain: null });
    const receipt = await reader.waitForTransactionReceipt({ hash });
    assert.is(receipt.status, 'success');
    const gas = receipt.gasUsed * receipt.effectiveGasPrice;
    assert.is((await reader.getBalance({ address: ownerA!.address })) - before + gas, BigInt(rowA.cumulative), 'a is paid the table\'s amount');
    assert.is(await reader.readContract({ address: contracts.rewards!, abi: REWARDS_ABI, functionName: 'claimed', args: [ownerA!.address] }), BigInt(rowA.cumulative));

    // b claims with the CLI, from the table as published on iop/v1/rewards/<epoch>.
    const tableFile = join(dir.path, `table-${latest}.json`);
    writeFileSync(tableFile, JSON.stringify(anchoredTable));
    const byCli = await runCli(['rewards', 'claim', '--epoch', String(latest), '--table', tableFile, '--rpc', evm.url, '--key', keyFile('b.key', DEV_KEYS[2]), '--contract', contracts.rewards!, '--json']);
    assert.is(byCli.code, 0, byCli.stderr.toString());
    assert.is(JSON.parse(byCli.stdout.toString()).paid, rowB.cumulative, 'b is paid the table\'s amount');
    assert.is(await reader.readContract({ address: contracts.rewards!, abi: REWARDS_ABI, functionName: 'claimed', args: [ownerB!.address] }), BigInt(rowB.cumulative));
  })());
});

test('gateway flags: a contribution epoch under 60 s needs --grace-s; --grace-s needs contribution on; bad values named', async () => {
  const stakes = join(dir.path, 'stakes.json');
  writeFileSync(stakes, '{}');
  const base = ['gateway', '--broker', 'mqtt://127.0.0.1:9', '--state-dir', join(dir.path, 'gw-flags'), '--allow-any'];
  const refused = async (args: string[], message: RegExp) => {
    const result = await runCli([...base, ...args]);
    assert.is(result.code, 2, `${args.join(' ')}: ${result.stderr.toString()}`);
    assert.match(result.stderr.toString(), message);
  };
  await refused(['--stakes', stakes, '--epoch-s', '20'], /--epoch-s 20: contribution epochs shorter than 60 s need --grace-s/);
  await refused(['--stakes', stakes, '--epoch-s', '5', '--grace-s', '1'], /--epoch-s expects a whole number from 10 to/);
  await refused(['--stakes', stakes, '--epoch-s', '20', '--grace-s', 'soon'], /--grace-s expects a whole number from 0 to 86400/);
  await refused(['--grace-s', '3'], /--grace-s needs contribution on/);
  await refused(['--stakes', stakes, '--beacon-period-s', '0'], /--beacon-period-s expects a whole number from 1/);
});

test.run();
