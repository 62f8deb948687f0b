// Device affinity between gateways sharing one PostgreSQL database. A shared subscription
// hands a device's readings to the gateways in turn (Mosquitto: round robin), so each
// gateway holds every other reading of every device until another gateway's commit fills
// the gaps: the gateways queue on each device's lock, make and merge single-reading runs,
// and whichever fills a gap reads the others' readings back to publish them. That cost
// about 30 µs of gateway CPU and 11 µs of database CPU more per reading with two gateways
// (bench:gateway, before this).
//
// Instead every device has one owner among the gateways alive now: each gateway renews a
// lease row in the database (on the database's clock), reads the others', and is told at
// once (LISTEN/NOTIFY) when one joins or leaves. Every device gets an ordinal in the
// database when a gateway first sees it, and the gateways (in name order) take the devices
// in turn by ordinal: the same owner in every gateway, and an even split however few the
// devices. Each gateway subscribes to the data topics of the devices it owns
// (data-subscriptions.ts), or to every device's while it is alone, so a reading reaches
// one gateway and the broker sends it once: adding a gateway adds capacity. Each device's
// readings thus reach one gateway, in the order the broker has them, which a gateway
// passing readings on to another could not keep: a backlog drained after an outage would
// come to the owner half directly, half after the other gateway's whole queue. (Before,
// every gateway subscribed to every device's readings and left those of the devices it
// did not own: each gateway received every reading, about 20 µs of CPU for each left.)
// A device a gateway has not seen is learnt from the retained status every box publishes
// when it connects (`iop/v1/<id>/status`, a mesh box's by its uplink box), a message per
// box connection, not per reading; and every device any gateway saw has its ordinal in
// the database.
//
// Affinity is a saving, not a rule the store relies on: while the gateways' views of who
// is alive differ (a gateway starting, stopping, or killed: its lease runs out), two of
// them may store one device's readings at once, which the store handles as before, or
// neither may be subscribed when a reading comes: no receipt covers it then, so the box
// sends it again after its receipt timeout (and a gateway's persistent session keeps its
// readings while it restarts).
import { hash } from 'node:crypto';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';

/** The lease rows of the gateways sharing a store. */
export interface GatewayMembership {
  /** Connects; `changed` is called when a gateway joins or leaves (notified, not polled). */
  open(changed: () => void): Promise<void>;
  /**
   * Renews this gateway's lease for `leaseMs` (or, not `alive`, gives it up) and returns
   * the names of the gateways whose lease runs, this one included when alive; when the
   * lease had run out (or never was), tells the others (announce).
   */
  heartbeat(name: string, leaseMs: number, alive: boolean): Promise<string[]>;
  /** Every device's ordinal known so far. */
  ordinals(): Promise<Map<string, number>>;
  /** Devices' ordinals: 1, 2, 3… in the order the gateways first saw the devices, made on first sight. */
  ordinalsOf(devices: string[]): Promise<Map<string, number>>;
  /** Gives the lease up (and tells the others). */
  leave(name: string): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_LEASE_MS = 5000;
/** heartbeats a lease: a gateway that misses a few (a long pause) keeps its devices */
const BEATS_PER_LEASE = 5;
/** A gateway's name: its MQTT client id, in the gateways' table and the logs. */
const GATEWAY_NAME = /^[A-Za-z0-9._-]{1,128}$/;
const MAX_OWNERS = 100_000;
const MAX_ORDINALS = 1_000_000;
/** how long a new device's first message waits for its ordinal before the fallback owner takes over */
const ORDINAL_WAIT_MS = 2000;
/** after failing to read a new device's ordinal, how long the fallback owner stands */
const ORDINAL_RETRY_MS = 1000;

export function usableGatewayName(name: string): boolean {
  return GATEWAY_NAME.test(name);
}

/** The owner of a device among `gateways`: the highest SHA-256 weight of (gateway, device). */
export function rendezvousOwner(device: string, gateways: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const gateway of gateways) {
    const weight = hash('sha256', `${gateway}\n${device}`, 'buffer').readUIntBE(0, 6);
    if (weight > bestWeight || (weight === bestWeight && gateway < best!)) {
      best = gateway;
      bestWeight = weight;
    }
  }
  return best;
}

export interface AffinityOptions {
  /** this gateway's name: its MQTT client id */
  name: string;
  membership: GatewayMembership;
  leaseMs?: number | undefined;
  /** whether this gateway can take readings now (its MQTT session is up) */
  alive: () => boolean;
  /**
   * Called when what this gateway should take may have changed: without a device, the
   * gateways or the view (`view()`) changed; with one, that device's ordinal was learnt.
   */
  changed?: ((device?: string) => void) | undefined;
  log: Logger;
}

/**
 * What a gateway takes: every device's readings ('all': alone, or unable to read the
 * leases for longer than a lease), those of the devices it owns ('devices'), or not yet
 * known ('undecided': its lease not yet renewed since its session came up).
 */
export type AffinityView = 'all' | 'devices' | 'undecided';

const MAX_UNRESOLVED = 10_000;

export class DeviceAffinity {
  readonly name: string;
  private readonly options: AffinityOptions;
  private readonly leaseMs: number;
  private gateways: string[] = [];
  /** when the gateways were last read: older than a lease, they are not trusted */
  private readAt = -Infinity;
  private readonly owners = new Map<string, string>();
  private ordinals = new Map<string, number>();
  private readonly learning = new Map<string, Promise<void>>();
  /** the devices whose ordinals are asked for at the end of this turn */
  private asking: { devices: string[]; done: Promise<void> } | undefined;
  private ordinalFailedAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private renewing: Promise<void> | undefined;
  /** whether the last heartbeat renewed this gateway's lease (it was alive then) */
  private registered = false;
  /** whether a heartbeat failed since the leases were last read */
  private failed = false;
  private lastView: AffinityView = 'undecided';
  /** devices seen whose ordinal could not be read: asked again at the next heartbeat */
  private readonly unresolved = new Set<string>();
  private stopped = false;

  constructor(options: AffinityOptions) {
    this.options = options;
    this.name = options.name;
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  }

  /** Renews the lease at once, then every fifth of it. */
  async start(): Promise<void> {
    this.timer = setInterval(() => {
      // A heartbeat still unanswered from the last tick: the leases may go unread for longer
      // than a lease (every device, then). Not after a pause of the whole process (a stopped
      // VM, a long GC): the heartbeat starting now answers first.
      const hanging = this.beating !== undefined;
      void this.heartbeat();
      if (hanging) this.viewChecked();
    }, Math.max(20, Math.floor(this.leaseMs / BEATS_PER_LEASE)));
    // Told, the others learn of a gateway coming or going at once, not at their next heartbeat.
    await this.options.membership.open(() => this.renew()).catch((err) => {
      this.options.log.warn(`gateways' table not reached (heartbeats go on trying): ${errorMessage(err)}`);
    });
    const known = await this.options.membership.ordinals().catch(() => undefined);
    if (known) for (const [device, ordinal] of known) this.ordinals.set(device, ordinal);
    // The view may have been decided meanwhile (the session came up first), without these.
    if (known?.size) this.options.changed?.();
    await this.heartbeat();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.allSettled([this.beating, this.renewing]);
    this.gateways = [];
    this.owners.clear();
    // The others take this gateway's devices at their next heartbeat, not when the lease runs out.
    await this.options.membership.leave(this.name).catch((err) => this.options.log.warn(`leaving the gateways' table failed: ${errorMessage(err)}`));
    await this.options.membership.close();
  }

  /** The gateways alive, as last read. */
  get members(): readonly string[] {
    return this.gateways;
  }

  /**
   * The gateway that should take this device's readings: another gateway's name, or this
   * one's (also when alone, or when the database could not be read for a lease). The
   * gateways in name order take the devices in turn by ordinal: an even split, which
   * hashing gives only over many devices (8 devices went 6 to 2 between two gateways).
   * A device seen for the first time has no ordinal yet: undefined, and `learnt(device)`
   * says when the database gave it (a few milliseconds). While the database cannot give
   * ordinals, the rendezvous choice stands in, the same in every gateway.
   */
  ownerOf(device: string): string | undefined {
    if (this.gateways.length < 2 || performance.now() - this.readAt > this.leaseMs) return this.name;
    let owner = this.owners.get(device);
    if (owner === undefined) {
      const ordinal = this.ordinals.get(device);
      if (ordinal === undefined) {
        if (performance.now() - this.ordinalFailedAt < ORDINAL_RETRY_MS) return rendezvousOwner(device, this.gateways) ?? this.name;
        this.learn(device);
        return undefined;
      }
      owner = this.gateways[ordinal % this.gateways.length]!;
      if (this.owners.size >= MAX_OWNERS) this.owners.clear();
      this.owners.set(device, owner);
    }
    return owner;
  }

  /** What this gateway takes now (AffinityView). */
  view(): AffinityView {
    const stale = performance.now() - this.readAt > this.leaseMs;
    if (stale && (this.failed || this.readAt > -Infinity)) return 'all';
    if (!this.registered || stale) return 'undecided';
    return this.gateways.length < 2 ? 'all' : 'devices';
  }

  /** Whether this gateway owns the device by its ordinal among the gateways alive (view 'devices'). */
  owns(device: string): boolean {
    const ordinal = this.ordinals.get(device);
    return ordinal !== undefined && this.gateways.length > 0 && this.gateways[ordinal % this.gateways.length] === this.name;
  }

  /** The devices with an ordinal this gateway owns among the gateways alive. */
  owned(): string[] {
    const index = this.gateways.indexOf(this.name);
    if (index < 0) return [];
    const owned: string[] = [];
    for (const [device, ordinal] of this.ordinals) if (ordinal % this.gateways.length === index) owned.push(device);
    return owned;
  }

  /** Whether the device's ordinal is known here. */
  knows(device: string): boolean {
    return this.ordinals.has(device);
  }

  /** A device was seen (its status, or a reading): its ordinal is read or made if unknown; `changed(device)` follows. */
  seen(device: string): void {
    if (!this.ordinals.has(device) && !this.stopped) this.learn(device);
  }

  /** The MQTT session came up: the lease is renewed at once (the view is undecided until then). */
  connected(): void {
    this.renew();
  }

  /** Resolves when the device's ordinal was read (or could not be). */
  learnt(device: string): Promise<void> {
    return this.learning.get(device) ?? Promise.resolve();
  }

  /** Asks for the device's ordinal with the others seen in this turn of the event loop (one statement). */
  private learn(device: string): void {
    if (this.learning.has(device)) return;
    if (!this.asking) {
      const devices: string[] = [];
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.asking = undefined;
        return this.readOrdinals(devices);
      });
      this.asking = { devices, done };
    }
    this.asking.devices.push(device);
    this.learning.set(device, this.asking.done);
  }

  private async readOrdinals(devices: string[]): Promise<void> {
    // A slow database must not leave the devices unowned for long: asked again later.
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ORDINAL_WAIT_MS} ms`)), ORDINAL_WAIT_MS).unref());
    try {
      const read = await Promise.race([this.options.membership.ordinalsOf(devices), timeout]);
      this.options.log.info(`ordinals of ${devices.length === 1 ? `device ${devices[0]}` : `${devices.length} devices`} read: ${read.size} known`);
      for (const device of devices) {
        const ordinal = read.get(device);
        if (ordinal === undefined) {
          if (this.unresolved.size < MAX_UNRESOLVED) this.unresolved.add(device);
          continue;
        }
        if (this.ordinals.size >= MAX_ORDINALS) this.ordinals = new Map();
        this.ordinals.set(device, ordinal);
        this.unresolved.delete(device);
        this.options.changed?.(device);
      }
    } catch (err) {
      this.ordinalFailedAt = performance.now();
      for (const device of devices) if (this.unresolved.size < MAX_UNRESOLVED) this.unresolved.add(device);
      this.options.log.warn(`ordinals of ${devices.length === 1 ? `device ${devices[0]}` : `${devices.length} devices`} not read: ${errorMessage(err)}`);
    } finally {
      for (const device of devices) this.learning.delete(device);
    }
  }

  private renew(): void {
    if (this.renewing || this.stopped) return;
    // One under way may have read the leases before the change: another after it.
    this.renewing = (this.beating ?? Promise.resolve()).then(() => this.heartbeat()).finally(() => (this.renewing = undefined));
  }

  private heartbeat(): Promise<void> {
    if (this.beating || this.stopped) return this.beating ?? Promise.resolve();
    const startedAt = performance.now();
    const alive = this.options.alive();
    this.beating = this.options.membership.heartbeat(this.name, this.leaseMs, alive).then((gateways) => {
      if (this.stopped) return;
      this.readAt = startedAt;
      this.registered = alive;
      this.failed = false;
      if (gateways.join('\n') !== this.gateways.join('\n')) {
        this.options.log.info(`gateways sharing the devices: ${gateways.join(', ') || 'none'}`);
        this.gateways = gateways;
        this.owners.clear();
        this.lastView = this.view();
        this.options.changed?.();
      }
      this.viewChecked();
      for (const device of [...this.unresolved]) this.seen(device);
    }, (err: unknown) => {
      this.failed = true;
      this.options.log.warn(`gateway lease not renewed: ${errorMessage(err)}`);
      this.viewChecked();
    }).finally(() => (this.beating = undefined));
    return this.beating;
  }

  /** Tells `changed` when the view moved (a lease renewed at last, or the leases unread too long). */
  private viewChecked(): void {
    if (this.stopped) return;
    const view = this.view();
    if (view === this.lastView) return;
    this.lastView = view;
    this.options.changed?.();
  }
}
