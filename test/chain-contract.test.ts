// The registry contract: the committed build is what solc-js makes of the sources; on a
// local EDR chain, deployed and extended with the CLI, anchoring is gateway-only and
// write-once, proofs of the standard tree verify on chain, and pairing checks the owner's
// EIP-712 signature exactly as the box does (same typed data, low s, nonce, expiry).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Wallet, Signature } from 'ethers';
import { createPublicClient, http, type Hex } from 'viem';
import { compileContract, compileRegistry, artifactFile, ARTIFACT_FILE, CONTRACTS } from '../contracts/compile.ts';
import { REGISTRY_ABI } from '../agent/chain/artifact.ts';
import { ChainClient, classifyChainError } from '../agent/chain/client.ts';
import { buildTree, proofFor } from '../agent/chain/merkle.ts';
import { pairingTypedData, ZERO_ADDRESS, type PairingMessage } from '../agent/pairing/eip712.ts';
import { privateKeyToAccount } from 'viem/accounts';
import { DEV_KEYS, evmMissing, startEvm, type Evm } from '../harness/evm.ts';
import { runCli, tempDir } from './helpers/cli.ts';

const missing = await evmMissing();
const dir = tempDir('iop-chain-');
let evm: Evm;
let contract: `0x${string}`;
const keyFile = (name: string, key: string) => {
  const path = join(dir.path, name);
  writeFileSync(path, key + '\n', { mode: 0o600 });
  return path;
};

test.before(async () => {
  if (!missing) evm = await startEvm();
});
test.after(async () => {
  await evm?.stop();
  dir.remove();
});

test('the committed contract builds are what solc-js makes of the sources, byte for byte', () => {
  assert.is(compileRegistry(), readFileSync(ARTIFACT_FILE, 'utf8'), 'run npm run contracts and commit contracts/build/IopRegistry.json');
  for (const name of CONTRACTS) {
    assert.is(compileContract(name), readFileSync(artifactFile(name), 'utf8'), `run npm run contracts and commit contracts/build/${name}.json`);
  }
});

const chainTest = (name: string, fn: () => Promise<void>) => test(name, async () => {
  if (missing) return console.log(`skipped "${name}": ${missing}`);
  await fn();
});

chainTest('chain deploy and chain authorize from the CLI; only authorised gateways anchor, once per epoch', async () => {
  const deployer = keyFile('deployer.key', DEV_KEYS[0]);
  const deployed = await runCli(['chain', 'deploy', '--rpc', evm.url, '--key', deployer, '--json']);
  assert.is(deployed.code, 0, deployed.stderr);
  const out = JSON.parse(deployed.stdout.toString());
  assert.equal(Object.keys(out).sort(), ['chainId', 'contract', 'transaction']);
  assert.is(out.chainId, evm.chainId);
  contract = out.contract;
  // The key never shows: not in output, not in errors.
  assert.not.match(deployed.stdout.toString() + deployed.stderr, DEV_KEYS[0].slice(2));

  const second = privateKeyToAccount(DEV_KEYS[1]);
  const client = await ChainClient.connect(evm.url, second);
  const anchor = (epoch: number, root: string) => client.send(contract, 'anchor', [BigInt(epoch), root], { nonce: 0, gasFactor: 1.25, feeFactor: 1 });
  const refused = await anchor(1, '0x' + '11'.repeat(32)).then(() => undefined, (err: unknown) => classifyChainError(err));
  assert.is(refused?.kind === 'revert' && refused.error, 'NotAuthorized');

  const authorized = await runCli(['chain', 'authorize', '--rpc', evm.url, '--key', deployer, '--contract', contract, '--gateway', second.address, '--json']);
  assert.is(authorized.code, 0, authorized.stderr);
  const reader = createPublicClient({ transport: http(evm.url) });
  assert.is(await reader.readContract({ address: contract, abi: REGISTRY_ABI, functionName: 'authorized', args: [second.address] }), true);

  const hash = await anchor(7, '0x' + '22'.repeat(32));
  assert.is((await client.waitForReceipt(hash)).status, 'success');
  assert.is(await reader.readContract({ address: contract, abi: REGISTRY_ABI, functionName: 'rootOf', args: [7n] }), '0x' + '22'.repeat(32));
  const again = await client.send(contract, 'anchor', [7n, '0x' + '33'.repeat(32)], { nonce: await client.nonce('pending'), gasFactor: 1.25, feeFactor: 1 })
    .then(() => undefined, (err: unknown) => classifyChainError(err));
  assert.is(again?.kind === 'revert' && again.error, 'AlreadyAnchored');
  const zero = await client.send(contract, 'anchor', [8n, '0x' + '00'.repeat(32)], { nonce: await client.nonce('pending'), gasFactor: 1.25, feeFactor: 1 })
    .then(() => undefined, (err: unknown) => classifyChainError(err));
  assert.is(zero?.kind === 'revert' && zero.error, 'ZeroRoot');

  // Usage errors are named, not thrown as stacks.
  const bad = await runCli(['chain', 'authorize', '--rpc', evm.url, '--key', deployer, '--contract', contract, '--gateway', 'nope']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--gateway expects an address/);
  const down = await runCli(['chain', 'deploy', '--rpc', 'http://127.0.0.1:9', '--key', deployer]);
  assert.is(down.code, 1);
  assert.match(down.stderr, /chain RPC does not answer/);
  writeFileSync(join(dir.path, 'open.key'), DEV_KEYS[0], { mode: 0o644 });
  const open = await runCli(['chain', 'deploy', '--rpc', evm.url, '--key', join(dir.path, 'open.key')]);
  assert.is(open.code, 1);
  assert.match(open.stderr, /must be 0600/);
});

test('gateway chain flags: all three or none; a missing key file named', async () => {
  const gw = join(dir.path, 'gw-flags');
  const partial = await runCli(['gateway', '--broker', 'mqtt://127.0.0.1:9', '--state-dir', gw, '--allow-any', '--chain-rpc', 'http://127.0.0.1:9']);
  assert.is(partial.code, 2);
  assert.match(partial.stderr, /anchoring needs all of --chain-rpc, --chain-contract and --chain-key/);
  const noKey = await runCli(['gateway', '--broker', 'mqtt://127.0.0.1:9', '--state-dir', gw, '--allow-any',
    '--chain-rpc', 'http://127.0.0.1:9', '--chain-contract', '0x' + '11'.repeat(20), '--chain-key', join(dir.path, 'absent.key')]);
  assert.is(noKey.code, 1);
  assert.match(noKey.stderr, /cannot read chain key .*absent\.key/);
});

chainTest('a proof of the standard tree verifies on chain with MerkleProof', async () => {
  const client = await ChainClient.connect(evm.url, privateKeyToAccount(DEV_KEYS[0]));
  const leaves = Array.from({ length: 37 }, (_, i) => ({ hash: new Uint8Array(32).fill(i + 1), device: `dev${i % 3}`, seq: i }));
  const tree = buildTree(leaves);
  await client.waitForReceipt(await client.send(contract, 'anchor', [100n, tree.root], { nonce: await client.nonce('pending'), gasFactor: 1.25, feeFactor: 1 }));
  for (const leaf of [leaves[0]!, leaves[20]!, leaves[36]!]) {
    const p = proofFor(tree, 100, leaf);
    assert.is(await client.read(contract, 'proves', [100n, p.leaf.hash, p.leaf.device, BigInt(p.leaf.seq), p.proof]), true);
    assert.is(await client.read(contract, 'proves', [100n, p.leaf.hash, p.leaf.device, BigInt(p.leaf.seq + 1), p.proof]), false);
  }
});

chainTest('pair checks the console typed data signed by the owner: wrong signer, high s, reused nonce, expiry refused', async () => {
  const client = await ChainClient.connect(evm.url, privateKeyToAccount(DEV_KEYS[0]));
  const owner = Wallet.createRandom();
  const next = Wallet.createRandom();
  const device = 'a2qzwexjy42her4o6tj22zpqeay6kbpt7annflvbecad5ls363fu4';
  const block = await client.public.getBlock();
  const expires = Number(block.timestamp) + 900;
  const sign = (wallet: Pick<Wallet, 'signTypedData'>, message: PairingMessage) => {
    const { EIP712Domain: _, ...types } = pairingTypedData(message).types;
    return wallet.signTypedData({ name: 'iop-agent', version: '1' }, types as never, message as never);
  };
  const pair = async (message: PairingMessage, signature: string) => {
    try {
      const hash = await client.send(contract, 'pair', [message.device, message.owner, message.previousOwner, message.nonce, BigInt(message.expires), signature],
        { nonce: await client.nonce('pending'), gasFactor: 1.25, feeFactor: 1 });
      return (await client.waitForReceipt(hash)).status;
    } catch (err) {
      const failure = classifyChainError(err);
      return failure.kind === 'revert' ? failure.error : failure.message;
    }
  };
  const first: PairingMessage = { device, owner: owner.address, previousOwner: ZERO_ADDRESS, nonce: '0x' + '01'.repeat(32), expires };
  assert.is(await pair(first, await sign(next, first)), 'WrongSigner');
  const good = await sign(owner, first);
  // The same signature in its malleable high-s form is refused.
  const sig = Signature.from(good);
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const highS = sig.r + (n - BigInt(sig.s)).toString(16).padStart(64, '0') + (sig.v === 27 ? '1c' : '1b');
  assert.is(await pair(first, highS), 'ECDSAInvalidSignatureS');
  assert.is(await pair(first, good), 'success');
  assert.is(await client.read(contract, 'ownerOf', [device]), owner.address);
  assert.is(await pair(first, good), 'NonceUsed');
  // A change of owner is signed by the current owner.
  const change: PairingMessage = { device, owner: next.address, previousOwner: owner.address, nonce: '0x' + '02'.repeat(32), expires };
  assert.is(await pair(change, await sign(next, change)), 'WrongSigner');
  const stranger: PairingMessage = { ...change, previousOwner: next.address, nonce: '0x' + '03'.repeat(32) };
  assert.is(await pair(stranger, await sign(next, stranger)), 'NotCurrentOwner');
  const expired: PairingMessage = { ...change, nonce: '0x' + '04'.repeat(32), expires: Number(block.timestamp) - 1 };
  assert.is(await pair(expired, await sign(owner, expired)), 'PairingExpired');
  assert.is(await pair(change, await sign(owner, change)), 'success');
  assert.is(await client.read(contract, 'ownerOf', [device]), next.address);
  const events = await client.public.getContractEvents({ address: contract, abi: REGISTRY_ABI, eventName: 'Paired', fromBlock: 0n });
  assert.equal(events.map((e) => (e.args as { owner: Hex }).owner), [owner.address, next.address]);
});

test.run();
