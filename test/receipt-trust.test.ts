// Which receipts delete readings: only those of the gateways the box trusts. A relay in the
// mesh that signs a receipt of its own for readings it carried deletes nothing, and an
// unusable pinned-gateway file stops the agent instead of trusting the next signer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from './helpers/cli.ts';
import { SimMedium } from '../drivers/sim/medium.ts';
import { SeededRandom } from '../drivers/sim/random.ts';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { MeshNode } from '../mesh/node.ts';
import { openBox } from '../agent/box.ts';
import { validateConfig } from '../agent/config/load.ts';
import { silentLogger } from '../agent/log.ts';
import { isIopError } from '../agent/errors.ts';
import { messageHash } from '../agent/codec/chain.ts';
import { toHex } from '../agent/codec/hex.ts';
import { ED25519, identityFromPublicKey, type DeviceIdentity } from '../agent/codec/identity.ts';
import { signReceiptSync } from '../agent/codec/receipt.ts';
import { ReceiptTrust, PINNED_GATEWAYS_FILE } from '../agent/uplink/receipt-trust.ts';
import { createForwarder } from '../agent/uplink/uplink.ts';
import { MeshPublisher } from '../agent/mesh/mesh-publisher.ts';
import { meshNodeId } from '../agent/mesh/setup.ts';

const dir = tempDir();
test.after(() => dir.remove());

function signer(): { key: KeyObject; identity: DeviceIdentity } {
  const pair = generateKeyPairSync('ed25519');
  const x = pair.publicKey.export({ format: 'jwk' }).x!;
  return { key: pair.privateKey, identity: identityFromPublicKey(ED25519, new Uint8Array(Buffer.from(x, 'base64url'))) };
}

function receiptBy(by: { key: KeyObject; identity: DeviceIdentity }, device: DeviceIdentity, seq: number, reading: Uint8Array): Uint8Array {
  return signReceiptSync(by.identity, (tbs) => new Uint8Array(sign(null, tbs, by.key)), {
    device: device.id, deviceKid: device.kid, seq, hash: messageHash(reading), time: Date.now() / 1000,
  });
}

test('a relay that signs a receipt of its own for readings it carried is ignored and counted; the gateway\'s receipt counts', async () => {
  const gateway = signer();
  const relayKey = signer();
  const config = validateConfig({
    stateDir: join(dir.path, 'origin'),
    uplink: { gatewayKeys: [toHex(gateway.identity.publicKey)] },
    mesh: { enabled: true, keyFile: '/unused', links: [{ type: 'udp', interface: 'lo' }] },
  }, 'test');
  const box = await openBox(config, silentLogger);
  try {
    for (let i = 0; i < 3; i++) await box.journal.append(new Uint8Array([0x80 + i]));
    const forwarder = createForwarder(config.uplink, config.stateDir, box, silentLogger);

    // The origin and one neighbour holding the mesh key, which offers itself as the uplink.
    const clock = new VirtualClock();
    const random = new SeededRandom(5);
    const medium = new SimMedium({ clock, random, rangeM: 1000 });
    const links = [medium.add(0, 0), medium.add(500, 0)];
    medium.connect();
    const meshKey = new Uint8Array(32).fill(7);
    const origin = new MeshNode({ id: meshNodeId(box.identity.publicKey), key: meshKey, epoch: 1, clock, links: [links[0]!], random: () => random.next() });
    const relay = new MeshNode({ id: new Uint8Array([6, 6, 6, 6, 6, 6]), key: meshKey, epoch: 1, clock, links: [links[1]!], random: () => random.next() });
    relay.announce('uplink');
    origin.onMessage((m) => {
      if (m.type === 'receipt') forwarder.onReceipt(m.payload);
    });
    // The relay answers every reading with a receipt it signed itself, hash and all right.
    const carried: Uint8Array[] = [];
    relay.onMessage((m) => {
      if (m.type !== 'reading') return;
      carried.push(m.payload);
      relay.send(m.origin, 'receipt', receiptBy(relayKey, box.identity, carried.length - 1, m.payload));
    });
    origin.start();
    relay.start();
    clock.runUntil(30_000);
    assert.ok(origin.bestUplink(), 'the origin routes to the relay');

    forwarder.attach(new MeshPublisher(origin), { window: 4, receiptTimeoutMs: 600_000, gapGraceMs: 600_000 });
    for (let i = 0; i < 40 && carried.length < 3; i++) {
      clock.runUntil(clock.now() + 1000);
      await new Promise((resolve) => setImmediate(resolve));
    }
    clock.runUntil(clock.now() + 10_000);
    assert.is(carried.length, 3, 'the relay carried the three readings');
    assert.is(forwarder.trust.refused.untrusted, 3, 'three forged receipts refused as untrusted');
    assert.is(forwarder.counters.rejectedReceipts, 3);
    assert.is(forwarder.ackedSeq, -1, 'no reading acknowledged');
    assert.is(box.journal.count(), 3, 'every reading still queued');

    // The same path with the gateway's receipt: it counts.
    relay.send(origin.id, 'receipt', receiptBy(gateway, box.identity, 2, carried[2]!));
    clock.runUntil(clock.now() + 10_000);
    assert.is(forwarder.ackedSeq, 2);
    assert.is(forwarder.counters.receipts, 1);
    forwarder.stop();
    origin.stop();
    relay.stop();
    assert.is(box.journal.count(), 0, 'the gateway receipt deleted them');
  } finally {
    await box.close();
  }
});

const corruptions: [string, string, RegExp][] = [
  ['not JSON', '{"publicKeys": [', /not JSON/],
  ['no key', '{"publicKeys": []}', /with at least one key/],
  ['another shape', '["ab"]', /with at least one key/],
  ['a key that is not hex', '{"publicKeys": ["zz"]}', /publicKeys\[0\] is not 64 hex digits/],
];

for (const [what, content, reason] of corruptions) {
  test(`a pinned gateway file with ${what} is an error naming the file, never an empty list`, () => {
    const stateDir = join(dir.path, `pinned-${what.replace(/\W+/g, '-')}`);
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(stateDir, PINNED_GATEWAYS_FILE), content);
    try {
      new ReceiptTrust({ device: 'a'.repeat(53), gatewayKeys: [], stateDir, log: silentLogger });
      assert.unreachable('a corrupt pin file was accepted');
    } catch (err) {
      assert.ok(isIopError(err, 'CONFIG'), String(err));
      assert.match((err as Error).message, new RegExp(`${PINNED_GATEWAYS_FILE} is unusable`));
      assert.match((err as Error).message, reason);
    }
    assert.is(readFileSync(join(stateDir, PINNED_GATEWAYS_FILE), 'utf8'), content, 'the file is left as it was');
    // Configured keys do not need the file.
    new ReceiptTrust({ device: 'a'.repeat(53), gatewayKeys: ['ab'.repeat(32)], stateDir, log: silentLogger });
  });
}

test('run stops with exit 2 naming a corrupt gateways.json, and leaves the stored readings alone', async () => {
  const stateDir = join(dir.path, 'corrupt-run');
  assert.is((await runCli(['sample', '--count', '3', '--out', '/dev/null', '--state-dir', stateDir])).code, 0);
  writeFileSync(join(stateDir, PINNED_GATEWAYS_FILE), 'garbage\n');
  // Nothing listens on port 1: the check comes before any connection.
  const result = await runCli(['run', '--state-dir', stateDir, '--broker', 'mqtt://127.0.0.1:1'], { timeoutMs: 20_000 });
  assert.is(result.code, 2, result.stderr);
  assert.match(result.stderr, /pinned gateway file .*corrupt-run\/gateways\.json is unusable: not JSON/);
  const exported = await runCli(['export', '--out', '-', '--state-dir', stateDir]);
  const verified = await runCli(['verify', '-'], { input: exported.stdout });
  assert.is(verified.stdout.toString().trim().split('\n').length, 3, 'the three readings are still there');
});

test.run();
