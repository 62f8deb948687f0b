// Owner pairing on the box, with the owner's signatures made by an independent
// EIP-712 implementation (ethers).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TypedDataEncoder, Wallet } from 'ethers';
import { commandTypedData, pairingTypedData, recoverAddress, typedDataDigest, ZERO_ADDRESS, type TypedData } from '../agent/pairing/eip712.ts';
import { OwnerStore } from '../agent/pairing/owner-store.ts';
import { Pairing, PairingError, PAIRING_TTL_MS } from '../agent/pairing/pairing.ts';

const DEVICE = 'a2qzwexjy42her4o6tj22zpqeay6kbpt7annflvbecad5ls363fu4';
const dirs: string[] = [];

function sign(wallet: Pick<Wallet, 'signTypedData'>, data: TypedData<object>): Promise<string> {
  const { EIP712Domain: _, ...types } = data.types;
  return wallet.signTypedData(data.domain, types as Record<string, { name: string; type: string }[]>, data.message as Record<string, unknown>);
}

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'iop-pairing-'));
  dirs.push(dir);
  const clock = { t: 1000, now() { return this.t; } };
  const pairing = new Pairing({ device: DEVICE, store: new OwnerStore(dir), clock });
  return { dir, clock, pairing };
}

function refusal(run: () => unknown): PairingError {
  try {
    run();
  } catch (err) {
    if (err instanceof PairingError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

test('digests match ethers for both primary types, and recovery finds the signer', async () => {
  const wallet = Wallet.createRandom();
  const pairing = pairingTypedData({ device: DEVICE, owner: wallet.address, previousOwner: ZERO_ADDRESS, nonce: '0x' + 'ab'.repeat(32), expires: 1_800_000_000 });
  const command = commandTypedData({ device: DEVICE, counter: 7, expires: 1_800_000_000, action: 'set-interval', args: '{"ms":5000}' });
  for (const data of [pairing, command] as TypedData<object>[]) {
    const { EIP712Domain: _, ...types } = data.types;
    assert.is('0x' + Buffer.from(typedDataDigest(data)).toString('hex'), TypedDataEncoder.hash(data.domain, types as never, data.message as never));
    assert.is(recoverAddress(typedDataDigest(data), await sign(wallet, data)), wallet.address);
  }
});

test('pairs with the owner signature and keeps the owner across restarts', async () => {
  const { dir, pairing, clock } = setup();
  const owner = Wallet.createRandom();
  const { typedData, signer } = pairing.start(owner.address.toLowerCase());
  assert.is(signer, owner.address);
  assert.is(typedData.message.previousOwner, ZERO_ADDRESS);
  assert.match(typedData.message.nonce, /^0x[0-9a-f]{64}$/);
  const record = pairing.finish(await sign(owner, typedData));
  assert.is(record.owner, owner.address);
  const again = new Pairing({ device: DEVICE, store: new OwnerStore(dir), clock });
  assert.is(again.owner, owner.address);
  assert.is(JSON.parse(readFileSync(join(dir, 'owner.json'), 'utf8')).current.owner, owner.address);
});

test('refused with the reason: wrong owner, expired, reused nonce, other typed data, garbage', async () => {
  const { pairing, clock } = setup();
  const owner = Wallet.createRandom();
  const stranger = Wallet.createRandom();
  assert.is(refusal(() => pairing.finish('0x' + '1'.repeat(130))).code, 'NO_PAIRING');
  assert.is(refusal(() => pairing.start('0x1234')).code, 'BAD_ADDRESS');

  let { typedData } = pairing.start(owner.address);
  assert.is(refusal(() => pairing.finish('')).code, 'BAD_SIGNATURE');
  assert.is(refusal(() => pairing.finish('0xzz' + '1'.repeat(128))).code, 'BAD_SIGNATURE');
  const strangerSig = await sign(stranger, typedData);
  const byStranger = refusal(() => pairing.finish(strangerSig));
  assert.is(byStranger.code, 'WRONG_SIGNER');
  assert.match(byStranger.message, stranger.address);
  // The owner's own signature, but over other typed data (another device).
  const otherSig = await sign(owner, { ...typedData, message: { ...typedData.message, device: 'another-device' } });
  assert.is(refusal(() => pairing.finish(otherSig)).code, 'WRONG_SIGNER');

  const good = await sign(owner, typedData);
  clock.t += PAIRING_TTL_MS + 1;
  const e3 = refusal(() => pairing.finish(good));
  assert.is(e3.code, 'EXPIRED');
  assert.is(pairing.owner, null);

  ({ typedData } = pairing.start(owner.address));
  const fresh = await sign(owner, typedData);
  pairing.finish(fresh);
  assert.is(pairing.owner, owner.address);
  const e4 = refusal(() => pairing.finish(fresh));
  assert.is(e4.code, 'NONCE_USED');
  assert.is(pairing.status().counters.refused >= 6, true);
});

test('a new owner needs the current owner signature, or a reset', async () => {
  const { pairing } = setup();
  const first = Wallet.createRandom();
  const second = Wallet.createRandom();
  let { typedData } = pairing.start(first.address);
  pairing.finish(await sign(first, typedData));
  let signer;
  ({ typedData, signer } = pairing.start(second.address));
  assert.is(typedData.message.previousOwner, first.address);
  assert.is(signer, first.address);
  const secondSig = await sign(second, typedData);
  assert.is(refusal(() => pairing.finish(secondSig)).code, 'WRONG_SIGNER');
  pairing.finish(await sign(first, typedData));
  assert.is(pairing.owner, second.address);
  pairing.reset();
  assert.is(pairing.owner, null);
  ({ typedData } = pairing.start(first.address));
  assert.is(typedData.message.previousOwner, ZERO_ADDRESS);
});

test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
test.run();
