// Pairing end to end: a box paired on its console (ptys), its claim through a real
// Mosquitto to the gateway, the retained owner record, the receipt pinning the gateway;
// then forged and replayed claims refused by the gateway with the reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { Wallet } from 'ethers';
import { ConsoleClient } from '../agent/console/client.ts';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import { commandTypedData, pairingTypedData, ZERO_ADDRESS, type CommandMessage, type PairingMessage } from '../agent/pairing/eip712.ts';
import { openJson, signJson } from '../agent/pairing/signed-json.ts';
import { runCli, tempDir } from './helpers/cli.ts';
import { fieldPairing } from './helpers/field-session.ts';
import { startMosquitto, type Broker } from './helpers/mosquitto.ts';
import { ptyPair, socatMissing, within, type PtyPair } from './helpers/pty.ts';
import { gatewayKey, start, type Running } from './helpers/system.ts';

const missing = socatMissing();
const dir = tempDir('iop-pair-gw-');
let broker: Broker;
let pty: PtyPair;
let gateway: Running;
let box: Running;
const gwDir = join(dir.path, 'gateway');
const boxDir = join(dir.path, 'box');

async function until<T>(what: string, check: () => T | undefined, ms = 30_000): Promise<T> {
  return within(ms, what, (async () => {
    for (;;) {
      const value = check();
      if (value !== undefined && value !== false) return value;
      await new Promise((r) => setTimeout(r, 50));
    }
  })());
}

/** Retained messages on a topic filter, newest per topic. */
async function retained(filter: string, waitMs = 1500): Promise<Map<string, Buffer>> {
  const client = await mqtt.connectAsync(broker.url);
  const seen = new Map<string, Buffer>();
  client.on('message', (topic, payload) => seen.set(topic, payload));
  await client.subscribeAsync(filter, { qos: 1 });
  await new Promise((r) => setTimeout(r, waitMs));
  await client.endAsync();
  return seen;
}

const sign = (wallet: Pick<Wallet, 'signTypedData'>, message: PairingMessage) => {
  const { EIP712Domain: _, ...types } = pairingTypedData(message).types;
  return wallet.signTypedData({ name: 'iop-agent', version: '1' }, types as never, message as never);
};

test.before(async () => {
  if (missing) return;
  broker = await startMosquitto();
  pty = await ptyPair(dir.path);
  gateway = start(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--no-share']);
  writeFileSync(join(dir.path, 'box.yaml'), `stateDir: ${boxDir}\nsampling: {intervalMs: 200}\nconsole: {tty: ${pty.box}}\n` +
    `uplink: {broker: '${broker.url}', ackTimeoutMs: 500}\n`);
  box = start(['run', '-c', join(dir.path, 'box.yaml')]);
});

test.after(async () => {
  await box?.stop();
  await gateway?.stop();
  await pty?.unplug();
  await broker?.stop();
  dir.remove();
});

test('a box paired on its console is recorded by the gateway, which it then pins', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  const owner = Wallet.createRandom();
  const device = JSON.parse((await runCli(['id', '--json', '--state-dir', boxDir])).stdout.toString()).id as string;
  // The goal of issue 12: three typed commands, from the console to the retained owner record.
  for (let i = 0; (await runCli(['console', pty.tech, 'id'], { timeoutMs: 20_000 })).code !== 0; i++) {
    if (i > 100) throw new Error(`the console never answered:\n${box.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const session = await fieldPairing(pty.tech, owner);
  assert.is(session.code, 0, session.stderr);
  assert.is(session.typed.length, 3);
  const nonce = session.nonce;
  let record: Record<string, unknown> | undefined;
  await within(30_000, 'retained owner', (async () => {
    while (!record) {
      const payload = (await retained(`iop/v1/${device}/owner`, 500)).get(`iop/v1/${device}/owner`);
      if (payload) record = JSON.parse(payload.toString());
    }
  })());
  assert.equal(Object.keys(record!).sort(), ['device', 'nonce', 'owner', 'pairedAt']);
  assert.is(record!.owner, owner.address);
  assert.is(record!.nonce, nonce);
  // The box got the gateway's pairing receipt: the claim is no longer pending, the gateway is pinned.
  await until('claim confirmed', () => !existsSync(join(boxDir, 'pair-claim.cose')));
  const pinned = JSON.parse(readFileSync(join(boxDir, 'gateways.json'), 'utf8')).publicKeys;
  assert.equal(pinned, [await gatewayKey(gwDir)]);
  // Paired, the device's readings are accepted without --allow.
  await until('pairings.json', () => existsSync(join(gwDir, 'pairings.json')));
  // The owner commands the box over MQTT: applied once, the replay refused; results device-signed.
  const mq = await mqtt.connectAsync(broker.url);
  const results: { signer: string; value: Record<string, unknown> }[] = [];
  mq.on('message', (_topic, payload) => {
    const opened = openJson(new Uint8Array(payload));
    results.push({ signer: opened.signer.id, value: opened.value as Record<string, unknown> });
  });
  await mq.subscribeAsync(`iop/v1/${device}/cmd/result`, { qos: 1 });
  const command: CommandMessage = { device, counter: 1, expires: Math.floor(Date.now() / 1000) + 300, action: 'set-interval', args: '{"intervalMs":300}' };
  const { EIP712Domain: _, ...commandTypes } = commandTypedData(command).types;
  const body = JSON.stringify({ command, signature: await owner.signTypedData({ name: 'iop-agent', version: '1' }, commandTypes as never, command as never) });
  await mq.publishAsync(`iop/v1/${device}/cmd`, body, { qos: 1 });
  await until('command result', () => results.length >= 1 || undefined);
  await mq.publishAsync(`iop/v1/${device}/cmd`, body, { qos: 1 });
  await until('replay result', () => results.length >= 2 || undefined);
  await mq.endAsync();
  assert.is(results[0]!.signer, device);
  assert.equal(results[0]!.value, { device, counter: 1, action: 'set-interval', ok: true });
  assert.is(results[1]!.value.reason, 'replayed');
  assert.is(JSON.parse(readFileSync(join(boxDir, 'console-settings.json'), 'utf8')).intervalMs, 300);
  // A receipt on the box's ack topic means the gateway accepted its readings.
  await within(30_000, 'receipt for readings', (async () => {
    while (!(await retained(`iop/v1/${device}/ack`, 300)).size) { /* again */ }
  })());
  await box.stop();
  const result = await gateway.stop();
  const counters = JSON.parse(result.stdout.toString().trim().split('\n').pop()!);
  assert.ok(counters.accepted > 0, JSON.stringify(counters));
  // Restart the gateway for the next test.
  gateway = start(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--no-share']);
});

test('a box paired while its broker is down sends the claim once it connects', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  const offlineDir = join(dir.path, 'offline');
  await broker.stop();
  let brokerUp = false;
  const ptys = await ptyPair(mkdtempSync(join(dir.path, 'pty-')));
  writeFileSync(join(dir.path, 'offline.yaml'), `stateDir: ${offlineDir}\nsampling: {intervalMs: 1000}\nconsole: {tty: ${ptys.box}}\n` +
    `uplink: {broker: '${broker.url}', reconnectMinMs: 100, reconnectMaxMs: 500}\n`);
  const offline = start(['run', '-c', join(dir.path, 'offline.yaml')]);
  try {
    const owner = Wallet.createRandom();
    let client: ConsoleClient | undefined;
    for (let i = 0; !client; i++) {
      try { client = await ConsoleClient.open(ptys.tech, 115200); } catch (err) { if (i > 100) throw err; await new Promise((r) => setTimeout(r, 100)); }
    }
    let device: string;
    try {
      const message = JSON.parse(await client.run(`pair start --owner ${owner.address} --json`)).typedData.message as PairingMessage;
      device = message.device;
      assert.is(JSON.parse(await client.run(`pair finish ${await sign(owner, message)} --json`)).ok, true);
    } finally {
      await client.close();
    }
    await until('claim stored while offline', () => existsSync(join(offlineDir, 'pair-claim.cose')));
    const waiting = await runCli(['console', ptys.tech, 'pair', 'status']);
    assert.match(waiting.stdout.toString(), /gateway +claim waiting to reach the gateway/);
    await broker.start();
    brokerUp = true;
    await until('claim confirmed after the broker came back', () => !existsSync(join(offlineDir, 'pair-claim.cose')), 60_000);
    const recorded = await runCli(['console', ptys.tech, '--json', 'pair', 'status']);
    assert.is(JSON.parse(recorded.stdout.toString()).claimPending, false);
    const record = (await retained(`iop/v1/${device}/owner`)).get(`iop/v1/${device}/owner`);
    assert.is(JSON.parse(record!.toString()).owner, owner.address);
  } finally {
    await offline.stop();
    await ptys.unplug();
    if (!brokerUp) await broker.start();
  }
});

test('forged, foreign and replayed claims are refused by the gateway with the reason', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  const other = tempDir('iop-pair-dev-');
  const { key, identity } = loadDeviceKey(other.path, { create: true });
  const intruder = loadDeviceKey(join(other.path, 'x'), { create: true });
  const owner = Wallet.createRandom();
  const stranger = Wallet.createRandom();
  const topic = `iop/v1/${identity.id}/pair`;
  const message: PairingMessage = { device: identity.id, owner: owner.address, previousOwner: ZERO_ADDRESS, nonce: '0x' + '42'.repeat(32), expires: 1_900_000_000 };
  const typedData = pairingTypedData(message);
  const client = await mqtt.connectAsync(broker.url);
  const send = async (bytes: Uint8Array) => client.publishAsync(topic, Buffer.from(bytes), { qos: 1 });
  try {
    await until('the restarted gateway subscribes', () => /pairing-mqtt: connected/.test(gateway.stderr()) || undefined);
    await send(await signJson(identity, key, { typedData, signature: await sign(stranger, message) }));
    await send(await signJson(intruder.identity, intruder.key, { typedData, signature: await sign(owner, message) }));
    await send(await signJson(identity, key, { typedData: pairingTypedData({ ...message, device: 'another' }), signature: await sign(owner, { ...message, device: 'another' }) }));
    await send(new TextEncoder().encode('garbage'));
    await until('refusals logged', () => (gateway.stderr().match(/pairing refused/g)?.length ?? 0) >= 4 || undefined);
    assert.match(gateway.stderr(), /pairing refused \(bad-owner-signature\)/);
    assert.match(gateway.stderr(), /pairing refused \(other-device\): claim signed by/);
    assert.match(gateway.stderr(), /pairing refused \(other-device\): claim of .* pairs device another/);
    assert.match(gateway.stderr(), /pairing refused \(bad-box-signature\)/);
    assert.is((await retained(`iop/v1/${identity.id}/owner`)).size, 0);

    // The real claim is recorded; a second owner's claim with the spent nonce is refused.
    await send(await signJson(identity, key, { typedData, signature: await sign(owner, message) }));
    const second = Wallet.createRandom();
    const replay: PairingMessage = { ...message, owner: second.address, previousOwner: owner.address };
    await until('recorded', () => gateway.stderr().includes(`device ${identity.id} paired to ${owner.address}`) || undefined);
    await send(await signJson(identity, key, { typedData: pairingTypedData(replay), signature: await sign(owner, replay) }));
    await until('replay refused', () => /pairing refused \(nonce-reused\)/.test(gateway.stderr()) || undefined);
    const owners = await retained(`iop/v1/${identity.id}/owner`);
    assert.is(JSON.parse(owners.get(`iop/v1/${identity.id}/owner`)!.toString()).owner, owner.address);
  } finally {
    await client.endAsync();
    other.remove();
  }
});

test.run();
