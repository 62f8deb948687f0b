// The box's console on socat pseudo-terminals: every command in both forms, line
// editing, and robustness against long lines, binary garbage, unplugging and a brute
// force of bad pairing signatures.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import type { ConsoleAgent, StatusSnapshot } from '../agent/console/commands.ts';
import { ConsoleClient } from '../agent/console/client.ts';
import { openSerial } from '../agent/console/serial-port.ts';
import { ConsoleServer, PROMPT } from '../agent/console/server.ts';
import { storeBroker, storeWifi } from '../agent/console/settings.ts';
import { silentLogger } from '../agent/log.ts';
import { OwnerStore } from '../agent/pairing/owner-store.ts';
import { Pairing } from '../agent/pairing/pairing.ts';
import { ptyPair, socatMissing, within, type PtyPair } from './helpers/pty.ts';

const DEVICE = 'a2qzwexjy42her4o6tj22zpqeay6kbpt7annflvbecad5ls363fu4';
const missing = socatMissing();
const dir = mkdtempSync(join(tmpdir(), 'iop-console-'));
let pty: PtyPair;
let server: ConsoleServer;
let restarts = 0;
const pairing = new Pairing({ device: DEVICE, store: new OwnerStore(dir), clock: { now: () => performance.now() } });

const snapshot = (): StatusSnapshot => ({
  device: DEVICE, version: '0.1.0', uptimeS: 3725, time: { wall: new Date().toISOString(), quality: 'system clock, not measured' },
  uplink: { broker: 'mqtt://127.0.0.1:1883', connected: false }, queue: 12, owner: pairing.owner,
  sensors: [{ name: 'temperature', kind: 'simulated/temperature', value: 21.5, unit: 'Cel', at: new Date().toISOString() },
    { name: 'humidity', kind: 'simulated/humidity', error: 'no answer from the sensor' }],
  mesh: { node: 'aabbccdd', neighbours: [{ node: '11223344', link: 'wlan0', cost: 96 }], uplinkVia: '11223344', uplinkMetric: 192 },
});

const agent: ConsoleAgent = {
  identity: () => ({ id: DEVICE, publicKey: 'ab'.repeat(32), scheme: 'Ed25519' }),
  status: snapshot,
  logs: (n) => ['2026-12-01T10:00:00Z info  run: started', 'uplink: key [hex masked]'].slice(-n),
  pairing,
  claimPending: () => false,
  setBroker: (url) => storeBroker(dir, url),
  meshEnabled: true,
  setWifi: (iface, wifi) => storeWifi(dir, iface, wifi),
  restart: () => { restarts++; },
};

async function withClient<T>(run: (client: ConsoleClient) => Promise<T>): Promise<T> {
  const client = await ConsoleClient.open(pty.tech, 115200);
  try {
    return await within(240_000, 'console exchange', run(client));
  } finally {
    await client.close();
  }
}

const json = async (client: ConsoleClient, line: string) => JSON.parse(await client.run(`${line} --json`)) as Record<string, unknown>;

test.before(async () => {
  if (missing) return;
  pty = await ptyPair(dir);
  server = new ConsoleServer({ tty: pty.box, baud: 115200, agent, log: silentLogger, reopenMs: 50 });
  server.start();
});

test.after(async () => {
  await server?.stop();
  await pty?.unplug();
  rmSync(dir, { recursive: true, force: true });
});

test('every command answers in both forms', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  await withClient(async (client) => {
    const commands = ['help', 'status', 'id', 'sensors', 'mesh', 'log 5', 'pair status', `pair start --owner ${Wallet.createRandom().address}`,
      'set broker mqtt://broker.local:1883', 'set wifi wlan0 80211s iop-mesh 6', 'set wifi wlan1 ibss "field mesh" 36', 'set wifi wlan0 off', 'restart'];
    for (const line of commands) {
      const answer = await json(client, line);
      assert.is(answer.ok, true, `${line}: ${JSON.stringify(answer)}`);
      const text = await client.run(line);
      assert.ok(text.length > 0 && !text.startsWith('error:') && !text.startsWith('{'), `${line}: ${text}`);
    }
    assert.is(restarts, 2);
    const status = await json(client, 'status');
    assert.is(status.device, DEVICE);
    assert.is(status.queue, 12);
    assert.equal((status.sensors as { error?: string }[])[1]!.error, 'no answer from the sensor');
    const human = await client.run('status');
    assert.match(human, /^device +a2q/m);
    assert.match(human, /temperature +21\.5 Cel/);
    assert.match(human, /humidity +error: no answer from the sensor/);
    assert.match(human, /uplink via 11223344/);
    const id = await json(client, 'id');
    assert.equal(Object.keys(id).sort(), ['id', 'ok', 'publicKey']);
    const start = await json(client, `pair start --owner ${Wallet.createRandom().address}`);
    assert.is((start.typedData as { primaryType: string }).primaryType, 'Pairing');
  });
});

test('unknown commands and bad arguments: one line, with the hint', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  await withClient(async (client) => {
    assert.is(await client.run('shell'), "error: unknown command 'shell': type help for the list");
    assert.equal(await json(client, 'shell'), { ok: false, error: "unknown command 'shell': type help for the list", code: 'UNKNOWN_COMMAND' });
    for (const line of ['log many', 'pair', 'pair start --owner 0x12', 'pair finish 0x1234', 'set broker ftp://x', 'set colour red', 'pair reset',
      'set wifi wlan0 80211s iop-mesh 15', 'set wifi wlan0 adhoc iop-mesh 6', 'set wifi wlan0 ibss iop-mesh six', 'set wifi wlan0', 'set wifi bad/name off',
      `set wifi wlan0 80211s ${'m'.repeat(33)} 6`]) {
      const answer = await json(client, line);
      assert.is(answer.ok, false, line);
      assert.type(answer.error, 'string');
      assert.type(answer.code, 'string');
      assert.not.match(await client.run(line), /\n/, `${line}: one line`);
    }
  });
});

test('line editing: backspace erases, escape sequences are swallowed, no echo garbage', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  const port = await openSerial(pty.tech, 115200);
  port.on('error', () => {});
  let seen = '';
  port.setEncoding('latin1');
  port.on('data', (t: string) => (seen += t));
  try {
    port.write('\x15ix\x7fd\x1b[A\x1b[D --json\x00\x01\r');
    await within(10_000, 'answer', (async () => { while (!seen.includes(`}\r\n${PROMPT}`)) await new Promise((r) => setTimeout(r, 10)); })());
    assert.ok(seen.includes('ix\b \bd --json\r\n'), JSON.stringify(seen));
    assert.ok(seen.includes(`{"ok":true,"id":"${DEVICE}"`));
    assert.not.ok(/[\x00\x01\x1b]/.test(seen), 'no control bytes echoed');
  } finally {
    await new Promise((r) => port.close(r));
  }
});

test('over-long lines, binary garbage and a tech who unplugs mid-line', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  await withClient(async (client) => {
    const long = await client.run('x'.repeat(5000));
    assert.match(long, /^error: line too long \(5000 bytes, at most 4096\)/);
    assert.is((await json(client, 'id')).id, DEVICE);
  });
  const port = await openSerial(pty.tech, 115200);
  port.on('error', () => {});
  for (let i = 0; i < 16; i++) port.write(randomBytes(4096));
  port.write('sta'); // and the cable goes
  await new Promise((r) => port.drain(r));
  await new Promise((r) => port.close(r));
  await withClient(async (client) => assert.is((await json(client, 'id')).id, DEVICE));
  // Unplugged for real: the ptys vanish, then come back at the same path.
  const opened = server.counters.opened;
  const half = await openSerial(pty.tech, 115200);
  half.on('error', () => {});
  half.write('pair sta');
  await pty.unplug();
  await pty.plug();
  await within(20_000, 'reopen', (async () => { while (server.counters.opened === opened) await new Promise((r) => setTimeout(r, 20)); })());
  await withClient(async (client) => assert.is((await json(client, 'id')).id, DEVICE));
});

test('10,000 bad pair finish attempts, then the good one is accepted', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  const owner = Wallet.createRandom();
  await withClient(async (client) => {
    const start = await json(client, `pair start --owner ${owner.address}`);
    const typedData = start.typedData as { domain: { name: string; version: string }; types: Record<string, { name: string; type: string }[]>; message: Record<string, unknown> };
    const { EIP712Domain: _, ...types } = typedData.types;
    const good = await owner.signTypedData(typedData.domain, types, typedData.message);
    const stranger = Wallet.createRandom();
    const bad = [
      await stranger.signTypedData(typedData.domain, types, typedData.message),
      await owner.signTypedData(typedData.domain, types, { ...typedData.message, nonce: '0x' + '00'.repeat(32) }),
    ];
    // Sent in bursts of 500 lines without waiting for each answer, like a script would.
    const before = pairing.status().counters.refused;
    for (let burst = 0; burst < 20; burst++) {
      const lines = Array.from({ length: 500 }, (_, i) => {
        const n = burst * 500 + i;
        return n % 3 === 2 ? `pair finish 0x${randomBytes(65).toString('hex')}` : `pair finish ${bad[n % 3]}`;
      });
      const answers = await client.runAll(lines, 120_000);
      assert.is(answers.filter((a) => a.startsWith('error:')).length, 500);
    }
    assert.is(pairing.status().counters.refused - before, 10_000);
    const answer = await json(client, `pair finish ${good}`);
    assert.is(answer.ok, true, JSON.stringify(answer));
    assert.is(answer.owner, owner.address);
  });
});

test.run();
