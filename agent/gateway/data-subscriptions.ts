// Which readings a gateway with device affinity (affinity.ts) asks the broker for: the
// data topic of each device it owns (`iop/v1/<device>/data`), or every device's
// (`iop/v1/+/data`) while it serves them all (alone, or unable to read the leases), so
// that a reading reaches only the gateway owning its device, not every gateway.
//
// Subscriptions carry MQTT 5 subscription identifiers (which of them brought a message):
// a persistent session keeps the subscriptions of the gateway's earlier runs, and one
// this gateway does not hold now (a device owned then, not now) is dropped when its first
// message comes, not kept to bring readings twice. A subscription given up (a device gone
// to another gateway, the switch between one filter and per-device ones) stays a grace
// period (a lease) first, so that the new owner has subscribed before the old one stops
// taking: meanwhile both may take a reading, which the store handles (duplicates); what
// reaches neither, its box sends again after its receipt timeout.
import type { IPublishPacket, MqttClient } from 'mqtt';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { topicFilter } from '../uplink/topics.ts';

export const SUBSCRIPTION_ALL = 1;
export const SUBSCRIPTION_DEVICE = 2;
export const SUBSCRIPTION_STATUS = 3;
export const ALL_DATA = topicFilter('data');
/** Every box's retained status: how a gateway learns of devices it has not seen. */
export const ALL_STATUS = topicFilter('status');
/** filters per SUBSCRIBE or UNSUBSCRIBE packet (a packet of 1,000 device filters is about 60 kB) */
const FILTERS_PER_PACKET = 1000;
const MAX_DROPPED = 100_000;
/** how long changes gather into one packet */
const BATCH_MS = 20;

export interface DataSubscriptionsOptions {
  /** the client while connected */
  client: () => MqttClient | undefined;
  /** MQTT 5 (subscription identifiers) or 3.1.1 */
  mqtt5: () => boolean;
  graceMs: number;
  log: Logger;
  /** a subscription held by the session but no longer wanted was found and dropped */
  onStale: () => void;
}

export class DataSubscriptions {
  private readonly options: DataSubscriptionsOptions;
  /** the data filters held: undefined while wanted, else when to unsubscribe (grace period) */
  private readonly held = new Map<string, number | undefined>();
  private readonly toSubscribe = new Set<string>();
  private readonly toUnsubscribe = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private retireTimer: NodeJS.Timeout | undefined;
  private watchingStatus = false;
  /** the status subscription is (again) to be sent */
  private statusPending = false;
  private stopped = false;
  /** whether the wanted set was ever given: before, nothing held is known to be stale */
  private decided = false;
  private lastReport = '';
  /** stale filters already unsubscribed: the copies still on their way do not count again */
  private readonly dropped = new Set<string>();

  constructor(options: DataSubscriptionsOptions) {
    this.options = options;
  }

  /** Whether a data message on `topic` came through a subscription held (or in its grace period). */
  holds(topic: string): boolean {
    return this.held.has(ALL_DATA) || this.held.has(topic);
  }

  /** The data filters wanted now (every other held one is given up after the grace period). */
  want(filters: Iterable<string>): void {
    this.decided = true;
    const wanted = new Set(filters);
    for (const filter of wanted) this.add(filter);
    const retireAt = performance.now() + this.options.graceMs;
    for (const [filter, retiring] of this.held) {
      if (retiring === undefined && !wanted.has(filter)) this.held.set(filter, retireAt);
    }
    this.scheduleRetire();
    this.schedule();
  }

  /** One more data filter wanted (a device learnt). */
  add(filter: string): void {
    this.decided = true;
    if (this.held.has(filter) && this.held.get(filter) === undefined) return;
    if (!this.held.has(filter)) this.toSubscribe.add(filter);
    this.held.set(filter, undefined);
    this.toUnsubscribe.delete(filter);
    this.dropped.delete(filter);
    this.schedule();
  }

  /** Subscribes to every box's status too (how new devices are learnt). */
  watchStatus(): void {
    this.watchingStatus = true;
    this.statusPending = true;
  }

  /**
   * A data message on `topic` came: through which subscription (its identifiers; none from
   * an MQTT 3.1.1 broker). One this gateway does not hold is left over from an earlier run
   * of its persistent session: dropped.
   */
  received(topic: string, packet: IPublishPacket | undefined): void {
    if (!this.decided) return;
    const ids = packet?.properties?.subscriptionIdentifier;
    if (ids === undefined) {
      // MQTT 5: a subscription made without an identifier, by an earlier version (either
      // filter may have brought it). MQTT 3.1.1 has no identifiers: only a reading that
      // none of the filters held matches tells of one left over.
      if (this.options.mqtt5() || !this.holds(topic)) {
        this.stale(ALL_DATA);
        this.stale(topic);
      }
      return;
    }
    for (const id of Array.isArray(ids) ? ids : [ids]) {
      if (id === SUBSCRIPTION_ALL) this.stale(ALL_DATA);
      else if (id === SUBSCRIPTION_DEVICE) this.stale(topic);
    }
  }

  /** The session (re)connected: what is held is subscribed again (a new session has none). */
  connected(): void {
    for (const [filter, retiring] of this.held) if (retiring === undefined) this.toSubscribe.add(filter);
    this.statusPending = this.watchingStatus;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.retireTimer);
  }

  private stale(filter: string): void {
    if (this.held.has(filter) || this.dropped.has(filter)) return;
    if (this.dropped.size >= MAX_DROPPED) this.dropped.clear();
    this.dropped.add(filter);
    this.options.onStale();
    this.options.log.info(`dropping the subscription to ${filter} left from an earlier session`);
    this.toUnsubscribe.add(filter);
    this.schedule();
  }

  private scheduleRetire(): void {
    if (this.retireTimer || this.stopped) return;
    let first = Infinity;
    for (const retiring of this.held.values()) if (retiring !== undefined && retiring < first) first = retiring;
    if (first === Infinity) return;
    this.retireTimer = setTimeout(() => {
      this.retireTimer = undefined;
      const now = performance.now();
      for (const [filter, retiring] of this.held) {
        if (retiring !== undefined && retiring <= now) {
          this.held.delete(filter);
          this.toUnsubscribe.add(filter);
          this.dropped.add(filter); // its last copies on their way are not stale ones
        }
      }
      this.schedule(0);
      this.scheduleRetire();
    }, Math.max(0, first - performance.now()));
  }

  private schedule(delayMs = BATCH_MS): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
  }

  private async flush(): Promise<void> {
    const client = this.options.client();
    if (!client || this.stopped) return; // connected() sends it all again
    const subscribe = [...this.toSubscribe];
    const unsubscribe = [...this.toUnsubscribe];
    this.toSubscribe.clear();
    this.toUnsubscribe.clear();
    const identified = (id: number) => (this.options.mqtt5() ? { qos: 1 as const, properties: { subscriptionIdentifier: id } } : { qos: 1 as const });
    const requests: Promise<unknown>[] = [];
    // Subscribed before the old ones go: a reading in between reaches this gateway twice, not never.
    const status = this.statusPending;
    this.statusPending = false;
    if (status) requests.push(client.subscribeAsync(ALL_STATUS, identified(SUBSCRIPTION_STATUS)));
    if (subscribe.includes(ALL_DATA)) requests.push(client.subscribeAsync(ALL_DATA, identified(SUBSCRIPTION_ALL)));
    const devices = subscribe.filter((f) => f !== ALL_DATA);
    for (let i = 0; i < devices.length; i += FILTERS_PER_PACKET) {
      requests.push(client.subscribeAsync(devices.slice(i, i + FILTERS_PER_PACKET), identified(SUBSCRIPTION_DEVICE)));
    }
    for (let i = 0; i < unsubscribe.length; i += FILTERS_PER_PACKET) requests.push(client.unsubscribeAsync(unsubscribe.slice(i, i + FILTERS_PER_PACKET)));
    if (requests.length === 0) return this.report();
    try {
      await Promise.all(requests);
    } catch (err) {
      // The connection broke meanwhile (connected() sends it all again) or the broker refused.
      this.options.log.warn(`changing the subscriptions failed: ${errorMessage(err)}`);
      for (const filter of subscribe) if (this.held.has(filter) && this.held.get(filter) === undefined) this.toSubscribe.add(filter);
      for (const filter of unsubscribe) if (!this.held.has(filter)) this.toUnsubscribe.add(filter);
      this.statusPending ||= status;
      return;
    }
    this.report();
  }

  /** One line when what is taken changed (a bench and the tests wait for it). */
  private report(): void {
    if (!this.decided) return; // only the statuses subscribed yet
    let devices = 0;
    let retiring = 0;
    for (const [filter, retireAt] of this.held) {
      if (retireAt !== undefined) retiring++;
      else if (filter !== ALL_DATA) devices++;
    }
    const taking = this.held.has(ALL_DATA) && this.held.get(ALL_DATA) === undefined ? 'every device' : `${devices} devices`;
    const line = `taking the readings of ${taking}${retiring ? ` (${retiring} more subscriptions for a grace period)` : ''}`;
    if (line === this.lastReport) return;
    this.lastReport = line;
    this.options.log.info(line);
  }
}
