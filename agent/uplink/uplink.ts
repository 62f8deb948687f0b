// The box's MQTT uplink: one session, the forwarder, and the retained status
// (birth message on connect, last will and a clean goodbye marking it offline).
import type { MqttClient } from 'mqtt';
import type { UplinkConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Box } from '../box.ts';
import { Forwarder } from './forwarder.ts';
import { ReceiptTrust } from './receipt-trust.ts';
import { MqttSession } from './session.ts';
import { birthStatus, offlineStatus, statusChangeKey } from './status.ts';
import { deviceTopic } from './topics.ts';

export { CAPABILITIES } from './status.ts';
const STATUS_EVERY_MS = 60_000;

export interface Uplink {
  start(): void;
  /** A reading was stored: forward it when connected. */
  notify(): void;
  stop(): Promise<void>;
  readonly forwarder: Forwarder;
  readonly session: MqttSession;
}

/** The forwarder of a box's readings, whichever way they leave it (MQTT or mesh). */
export function createForwarder(config: UplinkConfig, stateDir: string, box: Box, log: Logger): Forwarder {
  const id = box.identity.id;
  return new Forwarder({
    journal: box.journal,
    dataTopic: deviceTopic(id, 'data'),
    ack: config.ack,
    window: config.window,
    ackTimeoutMs: config.ackTimeoutMs,
    trust: new ReceiptTrust({ device: id, gatewayKeys: config.gatewayKeys, stateDir, log: log.child('receipts') }),
    log: log.child('forward'),
  });
}

export function createUplink(options: { config: UplinkConfig & { broker: string }; stateDir: string; box: Box; version: string; log: Logger }): Uplink {
  const { config, box, log } = options;
  const id = box.identity.id;
  const topics = { data: deviceTopic(id, 'data'), status: deviceTopic(id, 'status'), ack: deviceTopic(id, 'ack') };
  const offline = () => new TextEncoder().encode(JSON.stringify(offlineStatus(id, 'direct')));
  const session = new MqttSession({
    url: config.broker,
    clientId: config.clientId ?? `iop-${id.slice(0, 20)}`,
    username: config.username,
    passwordFile: config.passwordFile,
    tls: config.tls,
    keepaliveS: config.keepaliveS,
    will: { topic: topics.status, payload: offline(), retain: true, qos: 1 },
    subscriptions: config.ack === 'gateway' ? [topics.ack] : [],
    reconnectMinMs: config.reconnectMinMs,
    reconnectMaxMs: config.reconnectMaxMs,
    log: log.child('mqtt'),
  });
  const forwarder = createForwarder(config, options.stateDir, box, log);

  let lastStatus = '';
  const publishStatus = (client: MqttClient, force: boolean) => {
    const key = statusChangeKey(box);
    if (!force && key === lastStatus) return;
    lastStatus = key;
    client.publish(topics.status, JSON.stringify(birthStatus(box, { version: options.version, ack: config.ack, uplink: 'direct' })), { qos: 1, retain: true });
  };
  let statusTimer: NodeJS.Timeout | undefined;

  session.on('connect', (client) => {
    publishStatus(client, true);
    forwarder.attach(client);
  });
  session.on('disconnect', () => forwarder.detach());
  session.on('message', (topic, payload) => {
    if (topic === topics.ack) forwarder.onReceipt(new Uint8Array(payload));
  });

  return {
    forwarder,
    session,
    start() {
      session.start();
      statusTimer = setInterval(() => {
        const client = session.current;
        if (client) publishStatus(client, false);
      }, STATUS_EVERY_MS);
    },
    notify: () => forwarder.notify(),
    async stop() {
      clearInterval(statusTimer);
      forwarder.stop();
      await session.stop({ topic: topics.status, payload: offline(), retain: true });
    },
  };
}
