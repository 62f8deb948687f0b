// The anchorer after a crash in its narrowest window: the nonce recorded ('sending') but
// not the transaction hash. Whether the transaction never left, was mined, or waits in the
// pool, the epoch ends up anchored exactly once. In process, on a local EDR chain.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { privateKeyToAccount } from 'viem/accounts';
import { Wallet } from 'ethers';
import { pairingTypedData, ZERO_ADDRESS, type PairingMessage } from '../agent/pairing/eip712.ts';
import { Anchorer } from '../agent/chain/anchorer.ts';
import { REGISTRY_ABI } from '../agent/chain/artifact.ts';
import { ChainClient } from '../agent/chain/client.ts';
import { GENESIS_PREV } from '../agent/codec/chain.ts';
import { SqliteAnchorLedger } from '../agent/gateway/anchor-ledger.ts';
import { SqliteGatewayStore } from '../agent/gateway/store-sqlite.ts';
import { createLogger, type Logger } from '../agent/log.ts';
import { DEV_KEYS, evmMissing, startEvm, type Evm } from '../harness/evm.ts';
import { tempDir } from './helpers/cli.ts';

const missing = await evmMissing();
const EPOCH_S = 10;
/** What the anchorer said, for the assertions and for a failure's message. */
let said: string[] = [];
const log: Logger = createLogger({ level: 'debug', sink: { write: (line: string) => { said.push(line); } } });
const account = privateKeyToAccount(DEV_KEYS[2]);
let evm: Evm;
let client: ChainClient;
let contract: `0x${string}`;
let epochBase = 1000;

test.before(async () => {
  if (missing) return;
  evm = await startEvm();
  client = await ChainClient.connect(evm.url, account);
  contract = (await client.deploy()).contract;
});
test.after(async () => {
  await evm?.stop();
});

/** A gateway state dir with one built epoch of 3 readings, and its ledger. */
async function builtEpoch(): Promise<{ ledger: SqliteAnchorLedger; epoch: number; now: number; remove(): void }> {
  const dir = tempDir('iop-anchorer-');
  const epoch = epochBase++;
  const start = epoch * EPOCH_S * 1000;
  const store = new SqliteGatewayStore(dir.path, { gapTimeoutMs: 60_000 });
  const ledger = new SqliteAnchorLedger(dir.path, { epochS: EPOCH_S });
  ledger.buildDue(start, 0);
  let prev = GENESIS_PREV;
  for (let seq = 0; seq < 3; seq++) {
    const hash = randomBytes(32);
    await store.acceptAll([{ device: 'a2tdnn5e6ngwhoqrykaogfqgrifxoqpsyqnp2rqu4eljyych2alii', seq, hash, prev, message: hash, receivedMs: start + seq }]);
    prev = hash;
  }
  await store.close();
  const now = start + (EPOCH_S + 2) * 1000;
  assert.is(ledger.buildDue(now, 1000).length, 1);
  return { ledger, epoch, now, remove: dir.remove };
}

async function runUntilMined(ledger: SqliteAnchorLedger, epoch: number, now: number): Promise<Anchorer> {
  const anchorer = new Anchorer({ ledger, rpc: evm.url, account, contract, confirmations: 1, log, now: () => now });
  anchorer.start();
  const end = Date.now() + 30_000;
  while (!['mined', 'final'].includes(ledger.epoch(epoch)!.state)) {
    if (Date.now() > end) throw new Error(`epoch ${epoch} stayed ${ledger.epoch(epoch)!.state}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return anchorer;
}

async function anchoredCount(epoch: number): Promise<number> {
  return (await client.public.getContractEvents({ address: contract, abi: REGISTRY_ABI, eventName: 'Anchored', args: { epoch: BigInt(epoch) }, fromBlock: 0n })).length;
}

const chainTest = (name: string, fn: () => Promise<void>) => test(name, async () => {
  if (missing) return console.log(`skipped "${name}": ${missing}`);
  said = [];
  try {
    await fn();
  } catch (err) {
    (err as Error).message += `\n--- anchorer log ---\n${said.join('\n')}`;
    throw err;
  }
});

chainTest('crashed before the transaction left: sent with the recorded nonce, anchored once', async () => {
  const { ledger, epoch, now, remove } = await builtEpoch();
  try {
    ledger.update(epoch, { state: 'sending', nonce: await client.nonce('pending'), sends: 1 });
    const anchorer = await runUntilMined(ledger, epoch, now);
    await anchorer.stop();
    assert.is(await anchoredCount(epoch), 1);
  } finally {
    remove();
  }
});

chainTest('crashed after the transaction was mined but before its hash was recorded: adopted, not sent again', async () => {
  const { ledger, epoch, now, remove } = await builtEpoch();
  try {
    const root = ledger.epoch(epoch)!.root;
    const nonce = await client.nonce('pending');
    ledger.update(epoch, { state: 'sending', nonce, sends: 1 });
    const tx = await client.send(contract, 'anchor', [BigInt(epoch), root], { nonce, gasFactor: 1.25, feeFactor: 1 });
    await client.waitForReceipt(tx);
    const anchorer = await runUntilMined(ledger, epoch, now);
    assert.is(ledger.epoch(epoch)!.tx, tx);
    await anchorer.stop();
    assert.is(await anchoredCount(epoch), 1);
    assert.is(await client.nonce('latest'), nonce + 1, 'no second transaction');
  } finally {
    remove();
  }
});

chainTest('crashed with the transaction waiting in the pool: nothing sent beside it, and it is adopted once mined', async () => {
  const { ledger, epoch, now, remove } = await builtEpoch();
  await evm.rpc('evm_setAutomine', [false]);
  try {
    const root = ledger.epoch(epoch)!.root;
    const nonce = await client.nonce('pending');
    ledger.update(epoch, { state: 'sending', nonce, sends: 1 });
    const tx = await client.send(contract, 'anchor', [BigInt(epoch), root], { nonce, gasFactor: 1.25, feeFactor: 1 });
    const anchorer = new Anchorer({ ledger, rpc: evm.url, account, contract, confirmations: 1, log, now: () => now });
    anchorer.start();
    const end = Date.now() + 30_000;
    // Two rounds that found it pending.
    while (said.filter((line) => line.includes(`epoch ${epoch}: our earlier transaction (nonce ${nonce}) is pending`)).length < 2) {
      if (Date.now() > end) throw new Error(`epoch ${epoch} is ${ledger.epoch(epoch)!.state}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.is(await client.nonce('pending'), nonce + 1, 'nothing sent beside it');
    await evm.rpc('evm_setAutomine', [true]);
    await evm.rpc('evm_mine');
    while (ledger.epoch(epoch)!.state !== 'mined') {
      if (Date.now() > end) throw new Error(`epoch ${epoch} stayed ${ledger.epoch(epoch)!.state}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.is(ledger.epoch(epoch)!.tx, tx);
    await anchorer.stop();
    assert.is(await anchoredCount(epoch), 1);
    assert.is(await client.nonce('latest'), nonce + 1);
  } finally {
    await evm.rpc('evm_setAutomine', [true]);
    remove();
  }
});

chainTest('a gateway not yet authorised says so and anchors once it is', async () => {
  const { ledger, epoch, now, remove } = await builtEpoch();
  const stranger = privateKeyToAccount(DEV_KEYS[3]);
  try {
    const anchorer = new Anchorer({ ledger, rpc: evm.url, account: stranger, contract, confirmations: 1, log, now: () => now });
    anchorer.start();
    const end = Date.now() + 30_000;
    while (!said.some((line) => line.includes(`the contract refuses with NotAuthorized(${stranger.address})`))) {
      if (Date.now() > end) throw new Error('no NotAuthorized warning');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.is(ledger.epoch(epoch)!.state, 'sending');
    await client.waitForReceipt(await client.send(contract, 'authorize', [stranger.address], { nonce: await client.nonce('pending'), gasFactor: 1.25, feeFactor: 1 }));
    while (ledger.epoch(epoch)!.state !== 'mined') {
      if (Date.now() > end) throw new Error(`epoch ${epoch} stayed ${ledger.epoch(epoch)!.state}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await anchorer.stop();
    assert.is(await anchoredCount(epoch), 1);
  } finally {
    remove();
  }
});

chainTest('a transaction that ran out of gas is sent again with more gas', async () => {
  const { ledger, epoch, now, remove } = await builtEpoch();
  try {
    const nonce = await client.nonce('pending');
    // What an earlier life sent with too little gas: mined, reverted (the dev node refuses
    // such a transaction outright while it mines on every send).
    await evm.rpc('evm_setAutomine', [false]);
    let starved: `0x${string}`;
    try {
      starved = await client.send(contract, 'anchor', [BigInt(epoch), ledger.epoch(epoch)!.root], { nonce, gasFactor: 1, feeFactor: 1, gas: 30_000n });
      await evm.rpc('evm_mine');
    } finally {
      await evm.rpc('evm_setAutomine', [true]);
    }
    assert.is((await client.waitForReceipt(starved)).status, 'reverted');
    ledger.update(epoch, { state: 'sent', nonce, tx: starved, sends: 1 });
    const anchorer = await runUntilMined(ledger, epoch, now);
    assert.is.not(ledger.epoch(epoch)!.tx, starved);
    assert.ok(said.some((line) => line.includes(`epoch ${epoch}: transaction ${starved} reverted`)), said.join('\n'));
    await anchorer.stop();
    assert.is(await anchoredCount(epoch), 1);
  } finally {
    remove();
  }
});

chainTest('a recorded nonce that another transaction of the key took: a fresh nonce, anchored once', async () => {
  const { ledger, epoch, now, remove } = await builtEpoch();
  try {
    const nonce = await client.nonce('pending');
    ledger.update(epoch, { state: 'sending', nonce, sends: 1 });
    // The same key did something else with that nonce (a pairing relay, an operator).
    await client.waitForReceipt(await client.send(contract, 'authorize', [privateKeyToAccount(DEV_KEYS[1]).address], { nonce, gasFactor: 1.25, feeFactor: 1 }));
    const anchorer = await runUntilMined(ledger, epoch, now);
    await anchorer.stop();
    assert.is(await anchoredCount(epoch), 1);
    assert.is(await client.nonce('latest'), nonce + 2);
  } finally {
    remove();
  }
});

chainTest('pairings relayed: recorded once (a second relay of it counts as done), an expired one refused for good', async () => {
  const { ledger, now, remove } = await builtEpoch();
  try {
    const device = 'a2qzwexjy42her4o6tj22zpqeay6kbpt7annflvbecad5ls363fu4';
    const owner = Wallet.createRandom();
    const block = await client.public.getBlock();
    const claim = async (nonce: string, expires: number) => {
      const message: PairingMessage = { device, owner: owner.address, previousOwner: ZERO_ADDRESS, nonce, expires };
      const { EIP712Domain: _, ...types } = pairingTypedData(message).types;
      return { device, nonce, claim: { owner: owner.address, previousOwner: ZERO_ADDRESS, expires, signature: await owner.signTypedData({ name: 'iop-agent', version: '1' }, types as never, message as never) } };
    };
    const good = await claim('0x' + '0a'.repeat(32), Number(block.timestamp) + 900);
    ledger.queuePairing(good);
    ledger.queuePairing(await claim('0x' + '0b'.repeat(32), Number(block.timestamp) - 60));
    const anchorer = await runUntilMined(ledger, epochBase - 1, now);
    const end = Date.now() + 30_000;
    while (ledger.pairings('done').length < 1 || ledger.pairings('failed').length < 1) {
      if (Date.now() > end) throw new Error('pairings not settled');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.is(await client.read(contract, 'ownerOf', [device]), owner.address);
    assert.ok(said.some((line) => line.includes(`pairing of ${device} not recorded on chain: the contract refuses it with PairingExpired`)));
    // The same pairing again (a gateway restarted before it saw the receipt): done, not failed.
    ledger.updatePairing(device, good.nonce, 'pending', null);
    while (ledger.pairings('pending').length) {
      if (Date.now() > end) throw new Error('second relay not settled');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(ledger.pairings('done').map((p) => p.nonce), [good.nonce]);
    await anchorer.stop();
  } finally {
    remove();
  }
});

test.run();
