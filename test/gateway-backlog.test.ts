// A gateway draining a persistent session's backlog stops reading from the broker while
// MAX_PENDING verified readings wait for its store, instead of verifying the whole backlog
// into its heap before the first batch is stored.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import { Gateway, MAX_PENDING } from '../agent/gateway/gateway.ts';
import { DeviceRegistry } from '../agent/gateway/registry.ts';
import { SqliteGatewayStore } from '../agent/gateway/store-sqlite.ts';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import { silentLogger } from '../agent/log.ts';
import { signNext, type SignedMessage } from '../agent/signer.ts';
import { deviceTopic } from '../agent/uplink/topics.ts';
import { testDeployment, until } from './helpers/system.ts';

const { dir, broker } = testDeployment(test, { extra: ['max_queued_messages 100000'] });

const READINGS = 4 * MAX_PENDING;

test(`a backlog of ${READINGS} readings: at most about MAX_PENDING wait for the store at once, and all are stored`, async () => {
  const box = loadDeviceKey(join(dir.path, 'box'), { create: true });
  const messages: SignedMessage[] = [];
  for (let i = 0; i < READINGS; i++) {
    const pack = { records: [{ n: 'temperature', u: 'Cel', v: 20 + (i % 10), t: Date.now() / 1000 - READINGS + i }] };
    messages.push(await signNext(box.key, box.identity, messages.at(-1), encodeSenmlPack(pack as never)));
  }
  const gatewayDir = join(dir.path, 'gateway');
  const { key, identity } = loadDeviceKey(gatewayDir, { create: true });
  // A store that takes its time, like a database across a network: the backlog comes faster.
  const inner = new SqliteGatewayStore(gatewayDir, { gapTimeoutMs: 60_000 });
  const store = Object.assign(Object.create(inner) as SqliteGatewayStore, {
    acceptAll: async (...args: Parameters<SqliteGatewayStore['acceptAll']>) => {
      await new Promise((resolve) => setTimeout(resolve, 250));
      return inner.acceptAll(...args);
    },
  });
  const options = {
    session: { url: broker.url, reconnectMinMs: 100, reconnectMaxMs: 1000, keepaliveS: 30 },
    sessionName: 'backlog-gw', stateDir: gatewayDir, key, identity, gapTimeoutMs: 60_000, store, share: false, log: silentLogger,
    registry: new DeviceRegistry({ allow: [], allowAny: true }),
  } as ConstructorParameters<typeof Gateway>[0];
  // Its persistent session subscribes once, then the backlog queues while it is away.
  const first = new Gateway({ ...options, store: Object.assign(Object.create(inner) as SqliteGatewayStore, { close: async () => undefined }) });
  first.start();
  await until('the gateway to subscribe', () => (first as unknown as { session: { connected: boolean } }).session.connected, 10_000, 20);
  await first.stop();
  const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  await Promise.all(messages.map((m) => publisher.publishAsync(deviceTopic(box.identity.id, 'data'), Buffer.from(m.bytes), { qos: 1 })));
  await publisher.endAsync();

  const gateway = new Gateway(options);
  gateway.start();
  try {
    await until('the backlog stored', () => gateway.counters.accepted === READINGS, 90_000, 50);
  } finally {
    await gateway.stop();
  }
  // Paused at MAX_PENDING; what the MQTT client had read already still comes (a few socket reads).
  assert.ok(gateway.counters.mostWaiting >= MAX_PENDING, `${gateway.counters.mostWaiting} waited at most`);
  assert.ok(gateway.counters.mostWaiting < MAX_PENDING + 600, `${gateway.counters.mostWaiting} waited at once (limit ${MAX_PENDING})`);
  assert.is(gateway.counters.rejected['broken-chain'] + gateway.counters.rejected.malformed, 0);
});

test.run();
