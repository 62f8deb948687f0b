// The uplink box's side of relaying: readings that arrive through the mesh are checked
// (signed by the origin the mesh names), published byte for byte on the origin's data
// topic, answered with a 'puback' once the broker has them, and the gateway's receipts
// for those origins travel back through the mesh.
import { createHash } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { identityFromId } from '../codec/identity.ts';
import { ReadingVerifier } from '../codec/verify.ts';
import type { Logger } from '../log.ts';
import { RateLimitedLog } from '../uplink/rate-limited-log.ts';
import type { MqttSession } from '../uplink/session.ts';
import { deviceTopic, parseTopic } from '../uplink/topics.ts';
import type { MeshMessage, MeshNode } from '../../mesh/node.ts';
import { nodeIdHex } from '../../mesh/packet.ts';
import { meshNodeId } from './setup.ts';

const MAX_ORIGINS = 1024;
const RECEIPT_COALESCE_MS = 300;

export class UplinkBridge {
  private readonly node: MeshNode;
  private readonly session: MqttSession;
  private readonly log: Logger;
  private readonly errors: RateLimitedLog;
  /** device id -> mesh node id of the boxes relayed for */
  private readonly origins = new Map<string, Uint8Array>();
  readonly counters = { relayed: 0, rejected: 0, receipts: 0 };
  private readonly receiptsDue = new Map<string, Uint8Array>();

  constructor(node: MeshNode, session: MqttSession, log: Logger) {
    this.node = node;
    this.session = session;
    this.log = log;
    this.errors = new RateLimitedLog(log);
    session.on('connect', (client) => this.subscribeAll(client));
    session.on('message', (topic, payload) => this.onMqtt(topic, payload));
  }

  /** A reading from the mesh: publish it if this box is connected, else drop it (the origin retries). */
  onReading(message: MeshMessage): void {
    const client = this.session.current;
    if (!client) return;
    let device: string;
    try {
      // A fresh verifier: the chain is the gateway's to judge; here only signature and origin.
      const reading = new ReadingVerifier().verify(message.payload);
      if (!reading.valid) throw new Error('signature does not verify');
      device = reading.device;
      const origin = meshNodeId(identityFromId(reading.device).publicKey);
      if (nodeIdHex(origin) !== message.originHex) throw new Error(`signed by device ${device}, whose mesh id is not the origin ${message.originHex}`);
    } catch (err) {
      this.counters.rejected++;
      this.errors.error(`relayed reading from mesh node ${message.originHex} rejected: ${(err as Error).message}`);
      return;
    }
    if (!this.origins.has(device)) {
      if (this.origins.size >= MAX_ORIGINS) {
        const [oldest] = this.origins.keys();
        this.origins.delete(oldest!);
        client.unsubscribe(deviceTopic(oldest!, 'ack'));
      }
      this.origins.set(device, message.origin);
      client.subscribe(deviceTopic(device, 'ack'), { qos: 1 });
      this.log.info(`relaying for device ${device} (mesh node ${message.originHex})`);
    }
    const payload = Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
    client.publish(deviceTopic(device, 'data'), payload, { qos: 1 }, (err) => {
      if (err) return;
      this.counters.relayed++;
      this.node.send(message.origin, 'puback', createHash('sha256').update(payload).digest());
    });
  }

  private subscribeAll(client: MqttClient): void {
    for (const device of this.origins.keys()) client.subscribe(deviceTopic(device, 'ack'), { qos: 1 });
  }

  private onMqtt(topic: string, payload: Buffer): void {
    const parsed = parseTopic(topic);
    if (parsed?.kind !== 'ack') return;
    const origin = this.origins.get(parsed.device);
    if (!origin) return;
    this.counters.receipts++;
    // A receipt covers everything up to its seq: when several come for one origin in a
    // short while (a backlog draining), only the newest needs the radio.
    const waiting = this.receiptsDue.get(parsed.device);
    this.receiptsDue.set(parsed.device, new Uint8Array(payload));
    if (waiting) return;
    setTimeout(() => {
      const newest = this.receiptsDue.get(parsed.device);
      this.receiptsDue.delete(parsed.device);
      if (newest) this.node.send(origin, 'receipt', newest);
    }, RECEIPT_COALESCE_MS).unref();
  }
}
