// Owner-signed remote commands: applied once; replayed, expired, from a non-owner, with
// a lower counter, for another device, malformed or unknown — refused with the reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import { silentLogger } from '../agent/log.ts';
import { commandTypedData, pairingTypedData, ZERO_ADDRESS, type CommandMessage } from '../agent/pairing/eip712.ts';
import { OwnerStore } from '../agent/pairing/owner-store.ts';
import { RemoteCommands } from '../agent/pairing/remote-commands.ts';

const dir = mkdtempSync(join(tmpdir(), 'iop-remote-'));
const { key, identity } = loadDeviceKey(dir, { create: true });
const owner = Wallet.createRandom();
const stranger = Wallet.createRandom();
const applied: string[] = [];
const NOW_S = 1_800_000_000;

function box(store = new OwnerStore(dir)) {
  return new RemoteCommands({
    identity, key, store, log: silentLogger, wallNow: () => NOW_S * 1000,
    actions: {
      setInterval: (ms) => applied.push(`interval ${ms}`),
      setSensor: (name, on) => { if (name === 'nope') throw new Error('no sensor nope'); applied.push(`${name} ${on}`); },
      restart: () => applied.push('restart'),
    },
  });
}

async function signed(wallet: Pick<Wallet, 'signTypedData'>, command: Partial<CommandMessage>): Promise<string> {
  const message: CommandMessage = { device: identity.id, counter: 1, expires: NOW_S + 60, action: 'set-interval', args: '{"intervalMs":5000}', ...command };
  const { EIP712Domain: _, ...types } = commandTypedData(message).types;
  return JSON.stringify({ command: message, signature: await wallet.signTypedData({ name: 'iop-agent', version: '1' }, types as never, message as never) });
}

test.before(() => {
  const message = { device: identity.id, owner: owner.address, previousOwner: ZERO_ADDRESS, nonce: '0x' + '01'.repeat(32), expires: NOW_S };
  new OwnerStore(dir).setOwner({ owner: owner.address, pairedAt: new Date().toISOString(), typedData: pairingTypedData(message), signature: '0x' + '00'.repeat(65) });
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('an owner command is applied once; refusals carry the reason', async () => {
  const commands = box();
  const first = await signed(owner, { counter: 5 });
  assert.equal(commands.handle(first), { device: identity.id, counter: 5, action: 'set-interval', ok: true });
  assert.equal(applied, ['interval 5000']);
  assert.is(commands.handle(first).reason, 'replayed');
  assert.is(commands.handle(await signed(owner, { counter: 3 })).reason, 'replayed');
  assert.is(commands.handle(await signed(owner, { counter: 6, expires: NOW_S - 1 })).reason, 'expired');
  assert.is(commands.handle(await signed(stranger, { counter: 7 })).reason, 'not-owner');
  assert.is(commands.handle(await signed(owner, { counter: 8, device: 'other' })).reason, 'other-device');
  assert.is(commands.handle(await signed(owner, { counter: 9, action: 'format-disk', args: '' })).reason, 'bad-action');
  assert.is(commands.handle(await signed(owner, { counter: 10, action: 'set-interval', args: '{"intervalMs":1}' })).reason, 'bad-action');
  assert.is(commands.handle('{"command": 5}').reason, 'malformed');
  assert.is(commands.handle('not json').reason, 'malformed');
  const tampered = JSON.parse(await signed(owner, { counter: 11 }));
  tampered.command.args = '{"intervalMs":10}';
  assert.is(commands.handle(JSON.stringify(tampered)).reason, 'not-owner');
  assert.equal(applied, ['interval 5000']);
  assert.is(commands.handle(await signed(owner, { counter: 12, action: 'sensor-disable', args: '{"sensor":"humidity"}' })).ok, true);
  assert.is(commands.handle(await signed(owner, { counter: 13, action: 'restart', args: '' })).ok, true);
  assert.equal(applied, ['interval 5000', 'humidity false', 'restart']);
  assert.is(commands.counters.executed, 3);
  assert.is(commands.counters.refused.replayed, 2);
});

test('the counter survives a restart', async () => {
  const again = box(new OwnerStore(dir));
  assert.is(again.handle(await signed(owner, { counter: 13, action: 'restart', args: '' })).reason, 'replayed');
  assert.is(again.handle(await signed(owner, { counter: 14 })).ok, true);
});

test('an unpaired box refuses every command', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'iop-remote-empty-'));
  try {
    assert.is(box(new OwnerStore(empty)).handle(await signed(owner, { counter: 100 })).reason, 'not-paired');
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test.run();
