// The uplink box's side of a mesh-only box's status: the origin's signed status, come
// through the mesh, is published retained on the origin's status topic, with the signed
// original beside it so that anyone can check the origin wrote it. An origin that falls
// silent for three of its own status intervals is marked offline by the uplink box, in
// its own name (the mesh's equivalent of an MQTT last will). It does so only while the
// status on the broker is the one it published: an origin that moved to another uplink
// box, or got its own uplink back, is not marked offline by the box it left.
import type { Clock, TimerHandle } from '../../drivers/clock.ts';
import type { MeshMessage } from '../../mesh/node.ts';
import { identityFromId } from '../codec/identity.ts';
import { verifyStatus } from '../codec/status.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { RateLimitedLog } from '../uplink/rate-limited-log.ts';
import type { MqttSession } from '../uplink/session.ts';
import { deviceTopic, parseTopic } from '../uplink/topics.ts';
import { meshNodeId } from './setup.ts';
import { nodeIdHex } from '../../mesh/packet.ts';

const MAX_ORIGINS = 1024;
/** statuses missed in a row before the uplink box says the origin is offline */
export const SILENT_INTERVALS = 3;
const MIN_INTERVAL_MS = 1000;
const MAX_INTERVAL_MS = 86_400_000;

interface OriginStatus {
  /** (epoch, time) of the newest signed status accepted: older ones are replays or late copies */
  order: [number, number];
  /** the origin's announced status interval */
  everyMs: number;
  timer: TimerHandle | undefined;
  /** the payload this box last published on the origin's status topic */
  published: string | undefined;
  /** the broker's retained status is the one this box published (it came back to us) */
  current: boolean;
  online: boolean;
}

export class RelayedStatus {
  private readonly session: MqttSession;
  private readonly relayId: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly errors: RateLimitedLog;
  private readonly origins = new Map<string, OriginStatus>();
  readonly counters = { published: 0, rejected: 0, stale: 0, silent: 0 };

  constructor(options: { session: MqttSession; relayId: string; clock: Clock; log: Logger }) {
    this.session = options.session;
    this.relayId = options.relayId;
    this.clock = options.clock;
    this.log = options.log;
    this.errors = new RateLimitedLog(options.log);
    this.session.on('connect', (client) => {
      for (const device of this.origins.keys()) client.subscribe(deviceTopic(device, 'status'), { qos: 1 });
    });
    this.session.on('message', (topic, payload) => this.onMqtt(topic, payload));
  }

  /** A status message from the mesh: publish it if it is the origin's, signed, and newer than the last. */
  onStatus(message: MeshMessage): void {
    const client = this.session.current;
    if (!client) return; // the origin sends again at its next interval
    let device: string;
    let status: Record<string, unknown>;
    try {
      const verified = verifyStatus(message.payload);
      if (!verified.valid) throw new Error('signature does not verify');
      device = verified.device;
      status = verified.status;
      if (nodeIdHex(meshNodeId(identityFromId(device).publicKey)) !== message.originHex) {
        throw new Error(`signed by device ${device}, whose mesh id is not the origin ${message.originHex}`);
      }
    } catch (err) {
      this.counters.rejected++;
      this.errors.error(`status from mesh node ${message.originHex} rejected: ${errorMessage(err)}`);
      return;
    }
    let origin = this.origins.get(device);
    // The epoch rises at every start of the box: its clock may have gone back meanwhile.
    const order: [number, number] = [typeof status.epoch === 'number' ? status.epoch : 0, status.time as number];
    if (origin && (order[0] < origin.order[0] || (order[0] === origin.order[0] && order[1] <= origin.order[1]))) {
      this.counters.stale++;
      return;
    }
    if (!origin) {
      if (this.origins.size >= MAX_ORIGINS) this.forget(this.origins.keys().next().value!);
      origin = { order, everyMs: 0, timer: undefined, published: undefined, current: false, online: false };
      this.origins.set(device, origin);
      // Subscribed before publishing: the broker's old retained status comes before ours.
      client.subscribe(deviceTopic(device, 'status'), { qos: 1 });
    }
    origin.order = order;
    origin.online = status.online === true;
    const everyS = typeof status.statusEveryS === 'number' ? status.statusEveryS : MAX_INTERVAL_MS / 1000;
    origin.everyMs = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, everyS * 1000));
    const signed = Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength).toString('base64url');
    this.publish(device, origin, { ...status, publishedBy: this.relayId, signed });
    this.clock.clearTimeout(origin.timer);
    origin.timer = origin.online ? this.clock.setTimeout(() => this.silent(device), SILENT_INTERVALS * origin.everyMs) : undefined;
  }

  /** This box stops relaying: origins it speaks for now have no path to the broker. */
  stop(): void {
    for (const [device, origin] of this.origins) {
      this.clock.clearTimeout(origin.timer);
      if (origin.online && origin.current) this.publishOffline(device, origin, 'the uplink box stopped');
    }
    this.origins.clear();
  }

  status(): object {
    return { ...this.counters, origins: this.origins.size };
  }

  private silent(device: string): void {
    const origin = this.origins.get(device);
    if (!origin) return;
    origin.timer = undefined;
    // Another box (or the origin itself) published since: not ours to contradict.
    if (!origin.current) return;
    this.counters.silent++;
    this.log.info(`device ${device} sent no status for ${SILENT_INTERVALS * origin.everyMs / 1000} s: publishing it offline`);
    this.publishOffline(device, origin, `no status through the mesh for ${SILENT_INTERVALS * origin.everyMs / 1000} s`);
  }

  private publishOffline(device: string, origin: OriginStatus, reason: string): void {
    origin.online = false;
    this.publish(device, origin, { online: false, id: device, time: Date.now() / 1000, uplink: 'mesh', publishedBy: this.relayId, reason });
  }

  private publish(device: string, origin: OriginStatus, status: Record<string, unknown>): void {
    const client = this.session.current;
    if (!client) return;
    const payload = JSON.stringify(status);
    origin.published = payload;
    origin.current = false; // until the broker sends it back
    this.counters.published++;
    client.publish(deviceTopic(device, 'status'), payload, { qos: 1, retain: true });
  }

  private onMqtt(topic: string, payload: Buffer): void {
    const parsed = parseTopic(topic);
    if (parsed?.kind !== 'status') return;
    const origin = this.origins.get(parsed.device);
    if (origin) origin.current = origin.published !== undefined && payload.toString() === origin.published;
  }

  private forget(device: string): void {
    const origin = this.origins.get(device);
    this.clock.clearTimeout(origin?.timer);
    this.origins.delete(device);
    this.session.current?.unsubscribe(deviceTopic(device, 'status'));
  }
}
