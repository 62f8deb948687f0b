// The boxes of `iop-agent sim`, built from the agent's own classes: on every box the
// mesh router with the config's settings, the forwarder (its queue in memory, receipts
// checked against the gateway's key), the mesh publisher and the choice of route
// (MeshRole); on an uplink box also the relay bridge, whose MQTT session reaches a
// simulated broker with one gateway behind it. All of it runs on the simulator's
// virtual clock, so its figures are the shipped code's.
import type { Clock, TimerHandle } from '../../drivers/clock.ts';
import type { Link } from '../../drivers/link.ts';
import { MeshNode, type MeshMessage } from '../../mesh/node.ts';
import { LORA_TIMERS, type SimBox, type SimBoxes, type SimWorld } from '../../mesh/simulation.ts';
import { parseSign1 } from '../codec/cose.ts';
import { identityFromKid } from '../codec/identity.ts';
import { configSchema, type MeshConfig } from '../config/schema.ts';
import { silentLogger } from '../log.ts';
import { MemoryQueue } from '../store/reading-queue.ts';
import { Forwarder } from '../uplink/forwarder.ts';
import { receiptRanges } from '../gateway/store.ts';
import { ReceiptTrust } from '../uplink/receipt-trust.ts';
import { deviceTopic, parseTopic } from '../uplink/topics.ts';
import { UplinkBridge, type RelayClient, type RelaySession } from './bridge.ts';
import { MeshPublisher } from './mesh-publisher.ts';
import { MeshRole } from './mesh-role.ts';
import { meshNodeId } from './setup.ts';
import { signedTraffic, type SimTraffic } from './sim-traffic.ts';

/**
 * The agent's defaults, with what a LoRa deployment sets in its config (docs/mesh.md,
 * sections 9 and 10): radio timers, and receipts held 15 minutes so that one receipt
 * covers the three readings that follow instead of one receipt crossing the air per reading.
 */
export function loraMeshConfig(): MeshConfig {
  const defaults = configSchema.parse({}).mesh;
  return { ...defaults, receiptHoldMs: 900_000, timers: { ...LORA_TIMERS } };
}

/** One way between an uplink box and the broker, and the gateway behind it. */
const MQTT_LATENCY_MS = 20;
/** the gateway's pause before a receipt, so that one covers readings arriving together (agent/gateway) */
const RECEIPT_EVERY_MS = 100;

/** What the contribution simulation (agent/contribution/sim-contribution.ts) hears from uplink boxes. */
export interface SimHooks {
  /** a beacon or witness that came through the mesh to uplink box `uplink` */
  onReport?(uplink: number, message: MeshMessage): void;
  /** uplink box `uplink` relayed a reading to the broker */
  onRelayed?(uplink: number, device: string, seq: number, reading: Uint8Array): void;
}

export function shippedBoxes(options: { seed: number; intervalS: number; incompressible?: boolean; mesh?: MeshConfig; traffic?: SimTraffic; hooks?: SimHooks }): SimBoxes {
  const traffic = options.traffic ?? signedTraffic(options.seed, options.intervalS, { incompressible: options.incompressible });
  const config = options.mesh ?? loraMeshConfig();
  return {
    reading: (origin, n) => traffic.reading(origin, n),
    run(world) {
      const broker = new SimBroker(world.clock);
      const gateway = new SimGateway(world, broker, traffic);
      return (index, link, uplink) => {
        gateway.register(traffic.identity(index).id, index);
        return simBox(index, link, uplink, { world, broker, gateway, traffic, config, hooks: options.hooks });
      };
    },
  };
}

function simBox(index: number, link: Link, uplink: boolean, run: { world: SimWorld; broker: SimBroker; gateway: SimGateway; traffic: SimTraffic; config: MeshConfig; hooks: SimHooks | undefined }): SimBox {
  const { world, broker, gateway, traffic, config, hooks } = run;
  const { clock } = world;
  const identity = traffic.identity(index);
  const node = new MeshNode({
    id: meshNodeId(identity.publicKey), key: world.key, epoch: 1, clock, links: [link],
    timers: config.timers, hopLimit: config.hopLimit, fragmentBytes: config.fragmentBytes, random: world.random,
  });
  const uplinkDefaults = configSchema.parse({}).uplink;
  const queue = new MemoryQueue();
  const forwarder = new Forwarder({
    journal: queue, dataTopic: deviceTopic(identity.id, 'data'), ack: 'gateway', window: uplinkDefaults.window, ackTimeoutMs: uplinkDefaults.ackTimeoutMs,
    trust: new ReceiptTrust({ device: identity.id, gatewayKeys: [traffic.gatewayKey], stateDir: '', log: silentLogger }),
    log: silentLogger, clock,
  });
  // Readings sent again on the receipt timeout that the gateway held already: the receipt was lost or late.
  let resentHeld = 0;
  forwarder.onResend = (seq, cause) => {
    if (cause === 'timeout' && gateway.holds(identity.id, seq)) resentHeld++;
  };
  const session = uplink ? new SimSession(broker.client()) : undefined;
  const bridge = session && new UplinkBridge(node, session, silentLogger, config.receiptHoldMs, clock);
  if (bridge && hooks?.onRelayed) bridge.onRelayed = (device, seq, reading) => hooks.onRelayed!(index, device, seq, reading);
  const publisher = new MeshPublisher(node, clock);
  const onReport = hooks?.onReport && ((message: MeshMessage) => hooks.onReport!(index, message));
  const role = new MeshRole({ node, forwarder, publisher: publisher, bridge, config, direct: () => session !== undefined, clock, log: silentLogger, ...(onReport ? { onReport } : {}) });
  let maxQueued = 0;
  return {
    node,
    start() {
      node.start();
      role.start();
    },
    read(n) {
      queue.add({ seq: n, bytes: traffic.reading(index, n), hash: traffic.hash(index, n) });
      maxQueued = Math.max(maxQueued, queue.count());
      forwarder.notify();
    },
    counters() {
      const bridged = bridge ? Object.fromEntries(Object.entries(bridge.counters).map(([k, n]) => [`bridge_${k}`, n])) : {};
      return { ...forwarder.counters, resentTimeout_held: resentHeld, publisher_noUplink: publisher.counters.noUplink, publisher_dropped: publisher.counters.dropped, ...bridged, queued_at_end: queue.count(), max_queued: maxQueued };
    },
  };
}

type Delivery = (topic: string, payload: Buffer) => void;

/** Topics, retained messages and delivery after the network's latency; QoS 1 without loss. */
class SimBroker {
  private readonly clock: Clock;
  private readonly subscribers = new Map<string, Set<Delivery>>();
  private readonly retained = new Map<string, Buffer>();
  private readonly publishers = new Map<string, Delivery>();

  constructor(clock: Clock) {
    this.clock = clock;
  }

  client(): SimClient {
    return new SimClient(this);
  }

  /** the gateway's subscription to every box's data */
  onData(handler: Delivery): void {
    this.publishers.set('data', handler);
  }

  later(callback: () => void): TimerHandle {
    return this.clock.setTimeout(callback, MQTT_LATENCY_MS);
  }

  subscribe(topic: string, deliver: Delivery): void {
    let set = this.subscribers.get(topic);
    if (!set) this.subscribers.set(topic, set = new Set());
    set.add(deliver);
    const retained = this.retained.get(topic);
    if (retained) this.later(() => deliver(topic, retained));
  }

  unsubscribe(topic: string, deliver: Delivery): void {
    this.subscribers.get(topic)?.delete(deliver);
  }

  publish(topic: string, payload: Buffer, retain: boolean): void {
    if (retain) this.retained.set(topic, payload);
    if (parseTopic(topic)?.kind === 'data') this.publishers.get('data')?.(topic, payload);
    for (const deliver of this.subscribers.get(topic) ?? []) this.later(() => deliver(topic, payload));
  }
}

class SimClient implements RelayClient {
  private readonly broker: SimBroker;
  deliver: Delivery = () => {};
  private readonly receive: Delivery = (topic, payload) => this.deliver(topic, payload);

  constructor(broker: SimBroker) {
    this.broker = broker;
  }

  subscribe(topic: string): void {
    this.broker.subscribe(topic, this.receive);
  }

  unsubscribe(topic: string): void {
    this.broker.unsubscribe(topic, this.receive);
  }

  publish(topic: string, payload: Buffer, _options: { qos: 1 }, callback: (error?: Error) => void): void {
    this.broker.later(() => {
      this.broker.publish(topic, payload, false);
      this.broker.later(() => callback());
    });
  }
}

/** An uplink box's MQTT session: connected from the start and never lost. */
class SimSession implements RelaySession {
  readonly current: SimClient;

  constructor(client: SimClient) {
    this.current = client;
  }

  on(event: 'connect', listener: (client: RelayClient) => void): this;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): this;
  on(event: 'connect' | 'message', listener: ((client: RelayClient) => void) | ((topic: string, payload: Buffer) => void)): this {
    if (event === 'message') this.current.deliver = listener as Delivery;
    return this;
  }
}

/**
 * The gateway behind the broker, as agent/gateway does it: per device the runs of readings
 * it holds, and shortly after every reading stored or repeated (the box missed a receipt)
 * a signed receipt naming the runs (the lowest and the newest, `receiptRanges` of the real
 * gateway's store), retained on the device's ack topic. Receipts name held runs above a
 * gap, so a box learns of a reading lost on the way at the next reading's receipt.
 */
class SimGateway {
  private readonly devices = new Map<string, { origin: number; runs: { first: number; last: number }[]; timer: TimerHandle | undefined }>();

  /** the simulated box whose readings a device id signs */
  register(device: string, origin: number): void {
    this.devices.set(device, { origin, runs: [], timer: undefined });
  }

  /** whether the gateway holds reading `seq` of `device` */
  holds(device: string, seq: number): boolean {
    return this.devices.get(device)?.runs.some((r) => r.first <= seq && seq <= r.last) ?? false;
  }

  constructor(world: SimWorld, broker: SimBroker, traffic: SimTraffic) {
    broker.onData((topic, payload) => {
      const device = parseTopic(topic)!.device;
      const { header } = parseSign1(payload);
      const entry = this.devices.get(device);
      // The bridge publishes a reading on its signer's topic only; the boxes are all known.
      if (!entry || identityFromKid(header.kid).id !== device) throw new Error(`reading of an unknown box on ${topic}`);
      world.arrived(entry.origin, header.seq);
      holdSeq(entry.runs, header.seq);
      if (entry.timer) return;
      entry.timer = world.clock.setTimeout(() => {
        entry.timer = undefined;
        const withHashes = entry.runs.map((r) => ({ ...r, hash: traffic.hash(entry.origin, r.last) }));
        const ranges = receiptRanges(withHashes[0], withHashes.slice().reverse());
        broker.publish(deviceTopic(device, 'ack'), Buffer.from(traffic.receiptOf(entry.origin, ranges)), true);
      }, RECEIPT_EVERY_MS);
    });
  }
}

/** Adds `seq` to ascending, disjoint runs, joining the runs it touches; a seq held already changes nothing. */
export function holdSeq(runs: { first: number; last: number }[], seq: number): void {
  let at = 0;
  while (at < runs.length && runs[at]!.last < seq - 1) at++;
  const run = runs[at];
  if (!run || run.first > seq + 1) {
    runs.splice(at, 0, { first: seq, last: seq });
    return;
  }
  if (seq >= run.first && seq <= run.last) return;
  if (seq === run.first - 1) run.first = seq;
  else {
    run.last = seq;
    const next = runs[at + 1];
    if (next && next.first === seq + 1) {
      run.last = next.last;
      runs.splice(at + 1, 1);
    }
  }
}
