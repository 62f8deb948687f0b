// The reference chain gateway: takes readings from a shared MQTT subscription,
// verifies signature and chain per device, keeps them durably, answers each device
// with signed receipts (retained on its ack topic) and republishes verified readings
// as JSON for consumers. Every rejected message is counted by reason.
import { randomBytes } from 'node:crypto';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { parseSign1 } from '../codec/cose.ts';
import { identityFromId, type DeviceIdentity } from '../codec/identity.ts';
import type { DeviceKey } from '../identity/device-key.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { MqttSession, type SessionOptions } from '../uplink/session.ts';
import { RateLimitedLog } from '../uplink/rate-limited-log.ts';
import { deviceTopic, parseTopic, topicFilter, type TopicTarget } from '../uplink/topics.ts';
import { DEFAULT_LEASE_MS, DeviceAffinity, usableGatewayName } from './affinity.ts';
import { ALL_DATA, DataSubscriptions } from './data-subscriptions.ts';
import { MAX_IDENTITIES, ReadingCheck, recordsOf, verifiedBody, type RejectReason, type Verified } from './reading-check.ts';
import { ReceiptSender } from './receipt-sender.ts';
import type { DeviceRegistry } from './registry.ts';
import type { AcceptResult, GatewayStore, StepResult } from './store.ts';
import { SqliteGatewayStore } from './store-sqlite.ts';

export const SHARE_GROUP = 'iop-gateway';
const sharedDataFilter = () => `$share/${SHARE_GROUP}/${topicFilter('data')}`;
const MAX_BATCH = 500;
/**
 * Verified readings waiting for the store beyond which the gateway takes no further message
 * from the broker until a batch is stored (the MQTT client's handleMessage holds the next
 * packet; the socket fills and TCP holds the broker): a persistent session's backlog stays
 * in the broker, not in the gateway's heap, where tens of thousands of readings, verified
 * all at once before the first was stored, cost more in garbage collection than their
 * signatures and hundreds of megabytes.
 */
export const MAX_PENDING = 2 * MAX_BATCH;
/** (mqtt.js copies its options: one object for every `verified` message) */
const VERIFIED_PUBLISH = { qos: 1 } as const;

export type { RejectReason } from './reading-check.ts';

export interface GatewayCounters {
  accepted: number;
  /** accepted after the chain had been walked over their gap (also in accepted) */
  late: number;
  duplicate: number;
  receipts: number;
  missing: number;
  /** subscriptions of an earlier run of a persistent session found unwanted and dropped (device affinity) */
  staleSubscriptions: number;
  /** the most verified readings that waited for the store at once (MAX_PENDING bounds it) */
  mostWaiting: number;
  rejected: Record<RejectReason, number>;
}

export interface GatewayOptions {
  session: Omit<SessionOptions, 'subscriptions' | 'clientId' | 'will' | 'log'> & { clientId?: string | undefined };
  /** A persistent MQTT session under this client id: the broker keeps readings while the gateway restarts. */
  sessionName?: string | undefined;
  stateDir: string;
  key: DeviceKey;
  identity: DeviceIdentity;
  registry: DeviceRegistry;
  gapTimeoutMs: number;
  /** where readings are kept (store.ts openGatewayStore); SQLite in stateDir when absent */
  store?: GatewayStore | undefined;
  /** Subscribe through the MQTT 5 shared subscription (several gateways split the load). */
  share: boolean;
  /**
   * Device affinity (affinity.ts) when the store knows the gateways sharing it (PostgreSQL)
   * and `share` is set: on unless false. The gateway then subscribes to the readings of the
   * devices it owns (every device's while alone), not through the shared subscription.
   */
  affinity?: boolean | undefined;
  /** how long a gateway's lease in the store lasts (affinity.ts DEFAULT_LEASE_MS) */
  affinityLeaseMs?: number | undefined;
  log: Logger;
}

export class Gateway {
  readonly counters: GatewayCounters = {
    accepted: 0, late: 0, duplicate: 0, receipts: 0, missing: 0, staleSubscriptions: 0, mostWaiting: 0,
    rejected: { 'malformed': 0, 'too-large': 0, 'bad-signature': 0, 'unknown-device': 0, 'topic-mismatch': 0, 'broken-chain': 0, 'conflict': 0 },
  };
  private readonly options: GatewayOptions;
  private readonly store: GatewayStore;
  private readonly session: MqttSession;
  private readonly receipts: ReceiptSender;
  /** set by stop(): nothing is scheduled or sent against the store once it closes */
  private stopping = false;
  private closed = false;
  private readonly check: ReadingCheck;
  private pending: Verified[] = [];
  /** the store step under way: one at a time, the next batch gathers meanwhile */
  private storing: Promise<void> | undefined;
  private settling: Promise<void> | undefined;
  /** the MQTT client's next packet, held while MAX_PENDING readings wait for the store */
  private held: (() => void)[] = [];
  private gapTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly rejections: RateLimitedLog;
  private readonly affinity: DeviceAffinity | undefined;
  /** with affinity: the data topics subscribed to */
  private readonly subscriptions: DataSubscriptions | undefined;

  constructor(options: GatewayOptions) {
    this.options = options;
    this.log = options.log;
    this.rejections = new RateLimitedLog(options.log);
    this.check = new ReadingCheck(options.registry);
    this.store = options.store ?? new SqliteGatewayStore(options.stateDir, { gapTimeoutMs: options.gapTimeoutMs });
    const clientId = options.sessionName ?? options.session.clientId ?? `iop-gw-${options.identity.id.slice(0, 12)}-${randomBytes(3).toString('hex')}`;
    const membership = options.share && options.affinity !== false ? this.store.membership?.() : undefined;
    if (membership) {
      if (usableGatewayName(clientId)) {
        this.affinity = new DeviceAffinity({
          name: clientId, membership, leaseMs: options.affinityLeaseMs, log: options.log.child('affinity'),
          alive: () => this.session.connectedClient !== undefined && !this.stopping,
          changed: (device) => this.ownershipChanged(device),
        });
        this.subscriptions = new DataSubscriptions({
          client: () => this.session.connectedClient,
          mqtt5: () => this.session.mqttVersion === '5',
          // Until the new owner of a device has subscribed: it learns of the change within a heartbeat.
          graceMs: options.affinityLeaseMs ?? DEFAULT_LEASE_MS,
          log: options.log.child('affinity'),
          onStale: () => void this.counters.staleSubscriptions++,
        });
        this.subscriptions.watchStatus();
      } else {
        options.log.warn(`no device affinity: the session name '${clientId}' is not usable as a gateway's name (letters, digits, . _ -)`);
      }
    }
    this.session = new MqttSession({
      ...options.session,
      clientId,
      ...(options.sessionName ? { sessionExpiryS: 7 * 86_400 } : {}),
      // With affinity, DataSubscriptions subscribes (per device) once the lease is renewed.
      subscriptions: this.affinity ? [] : [options.share ? sharedDataFilter() : topicFilter('data')],
      log: options.log.child('mqtt'),
      handleMessage: (callback) => this.next(callback),
      // A turn's acknowledgements, `verified` messages and receipts leave in one write, not
      // several small ones per packet (the largest cost after the signature check and the store).
      coalesceWrites: true,
    });
    this.session.on('message', (topic, payload, packet) => this.receive(topic, payload, packet));
    this.receipts = new ReceiptSender({
      store: this.store, session: this.session, identity: options.identity, key: options.key, log: options.log, onSent: () => void this.counters.receipts++,
    });
    // A persistent session keeps its subscriptions: one made without affinity (or with it)
    // would go on bringing every reading twice. (Device filters left from an earlier run
    // with affinity are dropped when their first message comes: DataSubscriptions.)
    if (options.sessionName && options.share) {
      const other = this.affinity ? sharedDataFilter() : topicFilter('data');
      this.session.on('connect', (client) => client.unsubscribe(other));
    }
    if (this.affinity) {
      this.session.on('connect', () => {
        this.subscriptions!.connected();
        this.affinity!.connected();
      });
    }
  }

  /**
   * What this gateway takes changed (affinity): every device's readings, or those of the
   * devices it owns; `device`: that device's ordinal was just learnt.
   */
  private ownershipChanged(device?: string): void {
    const affinity = this.affinity!;
    const view = affinity.view();
    if (view === 'undecided' || this.stopping) return; // what is subscribed stays
    if (view === 'all') return this.subscriptions!.want([ALL_DATA]);
    if (device === undefined) this.subscriptions!.want(affinity.owned().map((d) => topicFilter('data', d)));
    else if (affinity.owns(device)) this.subscriptions!.add(topicFilter('data', device));
  }

  start(): void {
    void this.affinity?.start();
    this.session.start();
    this.gapTimer = setInterval(() => this.settleGaps(), Math.max(100, this.options.gapTimeoutMs / 2));
  }

  async stop(): Promise<void> {
    // Messages still arrive while the session closes; nothing they schedule may run
    // against the closed store.
    this.stopping = true;
    this.subscriptions?.stop();
    this.receipts.stop();
    clearInterval(this.gapTimer);
    // First: the other gateways take this one's devices while it finishes.
    await this.affinity?.stop();
    // The broker's acknowledgements of what this gateway sent must be read for a clean end.
    this.release();
    await this.session.stop();
    // What arrives after this is neither stored nor receipted: its boxes send it again.
    this.closed = true;
    this.flush();
    await this.idle();
    await Promise.allSettled([this.settling, this.receipts.settled()]);
    await this.store.close();
  }

  /** Resolves when every reading received so far went through the store. */
  private async idle(): Promise<void> {
    while (this.storing) await this.storing;
  }

  /**
   * A message from the broker. With device affinity: a box's status tells of a device (its
   * ordinal is read or made, and its owner subscribes to it), and a reading is taken
   * whichever subscription brought it, one left from an earlier run of the session being
   * dropped (DataSubscriptions.received).
   */
  private receive(topic: string, payload: Buffer, packet: IPublishPacket | undefined): void {
    // Without affinity no subscription has an identifier: one that has came through a
    // subscription an earlier run with affinity left in the persistent session. The shared
    // (or plain) subscription brings the reading too.
    if (!this.affinity && packet?.properties?.subscriptionIdentifier !== undefined) return this.dropLeftOver(topic);
    // Parsed once: the check below needs it too.
    const target = parseTopic(topic);
    if (this.affinity && !this.closed) {
      // (An empty one clears a retained status: no box announced.)
      if (target?.kind === 'status') return payload.length ? this.affinity.seen(target.device) : undefined;
      this.subscriptions!.received(topic, packet);
      // Taking every device's readings (alone): each device's ordinal is made on first sight,
      // so that gateways joining later know whom it goes to.
      if (target?.kind === 'data' && !this.affinity.knows(target.device)) this.affinity.seen(target.device);
    }
    // Not copied: the payload is this message's own bytes (a slice of what the socket read).
    this.onMessage(topic, payload, target);
  }

  private readonly droppedLeftOvers = new Set<string>();

  private dropLeftOver(topic: string): void {
    const client = this.session.connectedClient;
    if (!client || this.droppedLeftOvers.has(topic) || this.droppedLeftOvers.size >= MAX_IDENTITIES) return;
    this.droppedLeftOvers.add(topic);
    this.counters.staleSubscriptions++;
    this.log.info(`dropping the subscription to ${topic} left from an earlier run with device affinity`);
    client.unsubscribe(topic);
  }

  /** Handles one data message; never throws. `target`: parseTopic(topic), when parsed already. */
  onMessage(topic: string, bytes: Uint8Array, target: TopicTarget | undefined = parseTopic(topic)): void {
    if (this.closed) return;
    try {
      this.handle(topic, bytes, target);
    } catch (err) {
      this.reject('malformed', `unexpected error on ${topic}: ${errorMessage(err)}`);
    }
  }

  private handle(topic: string, bytes: Uint8Array, target: TopicTarget | undefined): void {
    const checked = this.check.check(topic, bytes, target);
    if ('reason' in checked) return this.reject(checked.reason, checked.detail);
    this.pending.push(checked);
    // Readings arriving together are stored in one transaction: one fsync for many.
    if (this.pending.length === 1) setImmediate(() => this.flush());
    else if (this.pending.length >= MAX_BATCH) this.flush();
    if (this.pending.length > this.counters.mostWaiting) this.counters.mostWaiting = this.pending.length;
  }

  /** The MQTT client's hook after each message: its next packet waits while the store is behind. */
  private next(callback: () => void): void {
    if (this.pending.length >= MAX_PENDING && !this.stopping) this.held.push(callback);
    else callback();
  }

  private release(): void {
    const held = this.held;
    this.held = [];
    for (const callback of held) callback();
  }

  private flush(): void {
    if (this.storing || this.pending.length === 0) return;
    const batch = this.pending.splice(0, MAX_BATCH);
    this.storing = this.store.acceptAll(batch.map((b) => b.reading)).then(
      (results) => this.stored(batch, results),
      // Nothing of the batch was stored and no receipt covers it: the boxes send it again.
      (err) => this.log.error(`storing ${batch.length} readings failed: ${errorMessage(err)}`),
    ).finally(() => {
      this.storing = undefined;
      this.flush();
      if (this.pending.length <= MAX_BATCH) this.release();
    });
  }

  private stored(batch: Verified[], results: AcceptResult[]): void {
    // The batch's readings by message, for those that join the chain in another's step.
    let byMessage: Map<Uint8Array, Verified> | undefined;
    const received = (message: Uint8Array, own: Verified) => {
      if (message === own.reading.message) return own;
      byMessage ??= new Map(batch.map((b) => [b.reading.message, b]));
      return byMessage.get(message);
    };
    results.forEach((result, i) => {
      const own = batch[i]!;
      const { identity, reading } = own;
      if (result.outcome === 'duplicate') this.counters.duplicate++;
      else if (result.outcome === 'conflict') return this.reject('conflict', `seq ${reading.seq} of ${identity.id} differs from the one already accepted`);
      else if (result.outcome === 'broken') return this.reject('broken-chain', `seq ${reading.seq} of ${identity.id} does not link to the readings held around it`);
      else this.counters.accepted++;
      if (result.outcome === 'late') {
        this.counters.late++;
        this.log.info(`device ${identity.id}: seq ${reading.seq} came late and fills its gap`);
      }
      this.afterStep(identity, result, (message) => received(message, own));
      // Every stored reading changes what the receipt says; a duplicate usually means the
      // box missed a receipt: answer it again.
      this.receipts.schedule(identity);
    });
  }

  /** `received`: the reading as it came, when it came in this batch (else read back from the store). */
  private afterStep(identity: DeviceIdentity, result: StepResult, received?: (message: Uint8Array) => Verified | undefined): void {
    if (result.missing) {
      this.counters.missing += result.missing;
      this.log.warn(`device ${identity.id}: ${result.missing} readings missing before seq ${result.linked.find((l) => l.chain === 'gap')?.seq ?? '?'}; chain continues after the gap`);
    }
    // Not `current`: while a persistent session drains its queue (before the subscription
    // is confirmed) the readings stored then are published too, not left out of `verified`.
    const client = this.session.connectedClient;
    if (!client) return;
    for (const reading of result.linked) this.publishVerified(client, identity, reading.message, reading.chain, received?.(reading.message));
  }

  private publishVerified(client: MqttClient, identity: DeviceIdentity, message: Uint8Array, chain: string, verified: Verified | undefined): void {
    let body: string;
    if (verified) {
      body = verifiedBody(identity.id, verified.reading.seq, verified.reading.prev, chain, verified.records);
    } else {
      // Read back from the store (another gateway's reading, an earlier batch's, or from
      // before a restart): parsed again.
      const parsed = parseSign1(message);
      body = verifiedBody(identity.id, parsed.header.seq, parsed.header.prev, chain, recordsOf(parsed.payload));
    }
    client.publish(this.verifiedTopic(identity.id), body, VERIFIED_PUBLISH);
  }

  /** Each device's `verified` topic, made (and its id checked) once, not per reading. */
  private readonly verifiedTopics = new Map<string, string>();

  private verifiedTopic(device: string): string {
    let topic = this.verifiedTopics.get(device);
    if (topic === undefined) {
      topic = deviceTopic(device, 'verified');
      if (this.verifiedTopics.size >= MAX_IDENTITIES) this.verifiedTopics.clear();
      this.verifiedTopics.set(device, topic);
    }
    return topic;
  }

  private settleGaps(): void {
    if (this.settling || this.stopping) return;
    this.settling = (async () => {
      for (const device of await this.store.pendingDevices()) {
        if (this.stopping) return;
        const identity = identityFromId(device);
        const result = await this.store.settle(device);
        this.afterStep(identity, result);
        if (result.linked.length) this.receipts.schedule(identity);
      }
    })().catch((err) => this.log.warn(`gap check failed: ${errorMessage(err)}`)).finally(() => (this.settling = undefined));
  }

  private reject(reason: RejectReason, detail: string): void {
    this.counters.rejected[reason]++;
    // Keyed by reason: a flood of bad messages costs one log line a minute per reason.
    this.rejections.error(`rejected (${reason}): ${detail}`, reason);
  }
}
