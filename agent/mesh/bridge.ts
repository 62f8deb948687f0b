// The uplink box's side of relaying: readings that arrive through the mesh are checked
// (signed by the origin the mesh names) and published byte for byte on the origin's data
// topic; the gateway's receipts for those origins travel back through the mesh. A receipt
// covers every reading up to its seq, so the bridge holds it a while (`holdMs`) and one
// receipt answers several readings; it goes at once when the origin needs it now: the
// first one, a reading sent again (the origin missed a receipt), a reading that came
// uncompressed (the origin holds no reference we confirmed, and every message back
// confirms one), or a receipt that stays behind a reading published a while ago. A receipt
// showing a reading missing below a run the gateway holds is held like any other: on a
// congested radio mesh, telling such gaps early (and the origin sending the missing
// readings again on them) cost more airtime than it recovered; the origin's receipt
// timeout sends them again.
import { realClock, type Clock, type TimerHandle } from '../../drivers/clock.ts';
import { identityFromId } from '../codec/identity.ts';
import { verifyReceipt } from '../codec/receipt.ts';
import { ReadingVerifier } from '../codec/verify.ts';
import type { Logger } from '../log.ts';
import { RateLimitedLog } from '../uplink/rate-limited-log.ts';
import { deviceTopic, parseTopic } from '../uplink/topics.ts';
import type { MeshMessage, MeshNode } from '../../mesh/node.ts';
import { nodeIdHex } from '../../mesh/packet.ts';
import { meshNodeId } from './setup.ts';

const MAX_ORIGINS = 1024;
/** a receipt behind a reading published this long ago means the readings between are missing */
const GAP_GRACE_MS = 2000;

/** What the bridge uses of an MQTT client: the broker's on a box, a simulated one in the simulator. */
export interface RelayClient {
  subscribe(topic: string, options: { qos: 1 }): unknown;
  unsubscribe(topic: string): unknown;
  publish(topic: string, payload: Buffer, options: { qos: 1 }, callback: (error?: Error) => void): unknown;
}

/** What the bridge uses of the box's MQTT session (MqttSession on a box). */
export interface RelaySession {
  readonly current: RelayClient | undefined;
  on(event: 'connect', listener: (client: RelayClient) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
}

interface Origin {
  meshId: Uint8Array;
  /** newest receipt from the gateway not yet sent to the origin */
  held: { bytes: Uint8Array; seq: number; missing: (seq: number) => boolean } | undefined;
  timer: TimerHandle | undefined;
  /** seq of the last receipt sent to the origin */
  toldSeq: number;
  /** whether the last receipt sent to the origin showed this seq missing below a held run */
  toldMissing: (seq: number) => boolean;
  /** send the next receipt at once */
  urgent: boolean;
  lastPublished: { seq: number; at: number } | undefined;
}

export class UplinkBridge {
  private readonly node: MeshNode;
  private readonly session: RelaySession;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly errors: RateLimitedLog;
  private readonly holdMs: number;
  /** device id -> what the bridge knows of the box it relays for */
  private readonly origins = new Map<string, Origin>();
  /** plain: readings that came uncompressed; again: readings already receipted to the origin */
  readonly counters = { relayed: 0, rejected: 0, receipts: 0, receiptsSent: 0, plain: 0, again: 0 };
  /** told of every reading relayed to the broker, for relay attestations (docs/rewards.md, section 4) */
  onRelayed: ((device: string, seq: number, reading: Uint8Array) => void) | undefined;

  constructor(node: MeshNode, session: RelaySession, log: Logger, holdMs: number, clock: Clock = realClock) {
    this.node = node;
    this.clock = clock;
    this.session = session;
    this.log = log;
    this.holdMs = holdMs;
    this.errors = new RateLimitedLog(log);
    session.on('connect', (client) => this.subscribeAll(client));
    session.on('message', (topic, payload) => this.onMqtt(topic, payload));
  }

  /** A reading from the mesh: publish it if this box is connected, else drop it (the origin retries). */
  onReading(message: MeshMessage): void {
    const client = this.session.current;
    if (!client) return;
    let device: string;
    let seq: number;
    try {
      // A fresh verifier: the chain is the gateway's to judge; here only signature and origin.
      const reading = new ReadingVerifier().verify(message.payload);
      if (!reading.valid) throw new Error('signature does not verify');
      device = reading.device;
      seq = reading.seq;
      const origin = meshNodeId(identityFromId(reading.device).publicKey);
      if (nodeIdHex(origin) !== message.originHex) throw new Error(`signed by device ${device}, whose mesh id is not the origin ${message.originHex}`);
    } catch (err) {
      this.counters.rejected++;
      this.errors.error(`relayed reading from mesh node ${message.originHex} rejected: ${(err as Error).message}`);
      return;
    }
    let origin = this.origins.get(device);
    if (!origin) {
      if (this.origins.size >= MAX_ORIGINS) this.forget(client, this.origins.keys().next().value!);
      origin = { meshId: message.origin, held: undefined, timer: undefined, toldSeq: -1, toldMissing: () => false, urgent: true, lastPublished: undefined };
      this.origins.set(device, origin);
      // The retained receipt on the ack topic comes at once: the origin's first answer.
      client.subscribe(deviceTopic(device, 'ack'), { qos: 1 });
      this.log.info(`relaying for device ${device} (mesh node ${message.originHex})`);
    }
    // A reading the last receipt told missing fills its gap: the receipt that covers it can wait.
    const again = seq <= origin.toldSeq && !origin.toldMissing(seq);
    if (again || !message.compressed) {
      if (again) this.counters.again++;
      else this.counters.plain++;
      origin.urgent = true;
      // The gateway answers a duplicate with the receipt it has; one we hold already covers it.
      if (origin.held && origin.held.seq >= seq) this.sendReceipt(origin);
    }
    const payload = Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
    client.publish(deviceTopic(device, 'data'), payload, { qos: 1 }, (err) => {
      if (err) return;
      this.counters.relayed++;
      this.onRelayed?.(device, seq, message.payload);
      if (!origin.lastPublished || seq > origin.lastPublished.seq) origin.lastPublished = { seq, at: this.clock.now() };
    });
  }

  private forget(client: RelayClient, device: string): void {
    const origin = this.origins.get(device);
    this.clock.clearTimeout(origin?.timer);
    this.origins.delete(device);
    client.unsubscribe(deviceTopic(device, 'ack'));
  }

  private subscribeAll(client: RelayClient): void {
    for (const device of this.origins.keys()) client.subscribe(deviceTopic(device, 'ack'), { qos: 1 });
  }

  private onMqtt(topic: string, payload: Buffer): void {
    const parsed = parseTopic(topic);
    if (parsed?.kind !== 'ack') return;
    const origin = this.origins.get(parsed.device);
    if (!origin) return;
    let seq: number;
    let heldThrough: number;
    let missing: (seq: number) => boolean;
    try {
      const receipt = verifyReceipt(payload);
      seq = receipt.highest;
      heldThrough = receipt.seq;
      const { ranges } = receipt;
      missing = (n) => n > heldThrough && n < seq && !ranges.some((r) => r.first <= n && n <= r.last);
    } catch (err) {
      this.errors.error(`receipt for device ${parsed.device} is malformed: ${(err as Error).message}`);
      return;
    }
    this.counters.receipts++;
    if (origin.held && origin.held.seq > seq) return;
    const behind = this.behind(origin, seq);
    // Nothing new for the origin: unless it needs an answer now, there is nothing to send.
    if (seq <= origin.toldSeq && !origin.urgent && !behind) return;
    origin.held = { bytes: new Uint8Array(payload), seq, missing };
    if (origin.urgent || behind || this.holdMs === 0) {
      this.sendReceipt(origin);
      return;
    }
    origin.timer ??= this.clock.setTimeout(() => this.sendReceipt(origin), this.holdMs);
  }

  /** Whether a receipt stays behind the newest reading published a while ago: the readings between are missing. */
  private behind(origin: Origin, highest: number): boolean {
    const published = origin.lastPublished;
    return published !== undefined && highest < published.seq && this.clock.now() - published.at >= GAP_GRACE_MS;
  }

  private sendReceipt(origin: Origin): void {
    this.clock.clearTimeout(origin.timer);
    origin.timer = undefined;
    const held = origin.held;
    if (!held) return;
    origin.held = undefined;
    origin.urgent = false;
    origin.toldSeq = Math.max(origin.toldSeq, held.seq);
    origin.toldMissing = held.missing;
    this.counters.receiptsSent++;
    this.node.send(origin.meshId, 'receipt', held.bytes);
  }
}
