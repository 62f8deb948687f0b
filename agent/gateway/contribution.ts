// The gateway's contribution ledger (docs/rewards.md): beacons, witnesses and relay
// attestations from their topics, readings and statuses as the gateway sees them, data
// jobs; at the end of each epoch (plus a grace for late messages) the scores, the owners'
// rewards and the Merkle root of cumulative amounts, written to <state dir>/rewards/<epoch>.json
// and published retained on iop/v1/rewards/<epoch>. Its own MQTT session, beside the
// gateway's: nothing here can delay a receipt.
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { messageHash } from '../codec/chain.ts';
import { ReadingVerifier } from '../codec/verify.ts';
import { toHex } from '../codec/hex.ts';
import { epochTable, scoreDevices, cumulativeOf, type EpochTable } from '../contribution/epoch.ts';
import type { Location } from '../contribution/geo.ts';
import { allocate, JobLedger, parseJob, type Job, type Quantity } from '../contribution/jobs.ts';
import { beaconId, openContribution } from '../contribution/messages.ts';
import { DEFAULT_PRESENCE_RULES, PresenceLedger } from '../contribution/presence.ts';
import { RelayLedger } from '../contribution/relay.ts';
import { defaultScoreRules } from '../contribution/score.ts';
import type { StakeProvider } from '../contribution/rewards.ts';
import { uptimeSeconds, type StatusEvent } from '../contribution/uptime.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { openJson } from '../pairing/signed-json.ts';
import { writeFileAtomic } from '../state-dir.ts';
import { MqttSession, type SessionOptions } from '../uplink/session.ts';
import { RateLimitedLog } from '../uplink/rate-limited-log.ts';
import { TOPIC_ROOT } from '../uplink/topics.ts';

export const REWARDS_DIR = 'rewards';
const DEVICE_TOPIC = /^iop\/v1\/([a-z2-7]{2,128})\/(beacon|witness|relay|status|data|jobs\/answer)$/;
const JOB_TOPIC = /^iop\/v1\/jobs\/([A-Za-z0-9_.-]{1,64})$/;
const MAX_BYTES = 16 * 1024;

export interface ContributionOptions {
  session: Omit<SessionOptions, 'subscriptions' | 'log'>;
  stateDir: string;
  /** the paired devices and their owners (the pairing registry) */
  paired: () => Iterable<{ device: string; owner: string }>;
  /** where boxes are (their GPS or owner-signed configuration) */
  locations: ReadonlyMap<string, Location>;
  stakes: StakeProvider;
  /** reward pool per epoch, in the token's smallest unit */
  pool: bigint;
  byStakeOnly?: boolean;
  epochS?: number;
  beaconPeriodS?: number;
  regions?: readonly string[];
  /** device ids of the keys allowed to sign jobs */
  jobIssuers: readonly string[];
  /** late messages are taken this long after an epoch ends, s */
  graceS?: number;
  /** how often epochs are looked at for closing and jobs allocated, s (default 60) */
  tickS?: number;
  nowS?: () => number;
  log: Logger;
}

interface EpochState {
  epoch: number;
  presence: PresenceLedger;
  relays: RelayLedger;
  jobs: Map<string, JobLedger>;
  /** device -> seqs delivered, first and last */
  readings: Map<string, { seqs: Set<number>; first: number; last: number }>;
  hashes: Map<string, Uint8Array>;
  statuses: Map<string, StatusEvent[]>;
  refused: Record<string, number>;
}

export class ContributionLedger {
  private readonly options: ContributionOptions;
  private readonly session: MqttSession;
  private readonly errors: RateLimitedLog;
  private readonly epochS: number;
  private readonly states = new Map<number, EpochState>();
  private readonly jobs = new Map<string, { job: Job; allocated: Set<string>; declined: Map<string, string> }>();
  /** device -> quantities its readings carried (what it can serve) */
  private readonly offers = new Map<string, Map<string, Quantity>>();
  private timer: NodeJS.Timeout | undefined;
  /** device -> its latest status, carried into each new epoch (a box online stays online across the boundary) */
  private readonly lastStatus = new Map<string, StatusEvent>();
  readonly counters = { beacons: 0, witnesses: 0, relays: 0, readings: 0, statuses: 0, jobs: 0, tables: 0, refused: 0 };

  constructor(options: ContributionOptions) {
    this.options = options;
    this.epochS = options.epochS ?? DEFAULT_PRESENCE_RULES.epochS;
    this.errors = new RateLimitedLog(options.log);
    this.session = new MqttSession({
      ...options.session,
      subscriptions: ['beacon', 'witness', 'relay', 'status', 'data', 'jobs/answer'].map((k) => `${TOPIC_ROOT}/+/${k}`).concat(`${TOPIC_ROOT}/jobs/+`),
      log: options.log.child('contribution-mqtt'),
    });
    this.session.on('message', (topic, payload) => {
      try {
        this.onMessage(topic, new Uint8Array(payload));
      } catch (err) {
        this.refuse(undefined, 'malformed', `${topic}: ${errorMessage(err)}`);
      }
    });
  }

  start(): void {
    this.session.start();
    this.timer = setInterval(() => void this.tick().catch((err) => this.errors.error(`closing an epoch: ${errorMessage(err)}`)), (this.options.tickS ?? 60) * 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.session.stop();
  }

  private now(): number {
    return this.options.nowS?.() ?? Date.now() / 1000;
  }

  private state(epoch: number): EpochState {
    let s = this.states.get(epoch);
    if (s) return s;
    const startS = epoch * this.epochS;
    const endS = startS + this.epochS;
    s = {
      epoch,
      presence: new PresenceLedger({
        ...DEFAULT_PRESENCE_RULES, epoch, epochS: this.epochS, beaconPeriodS: this.options.beaconPeriodS ?? DEFAULT_PRESENCE_RULES.beaconPeriodS,
        regions: this.options.regions ?? DEFAULT_PRESENCE_RULES.regions, ownerOf: (d) => this.ownerOf(d), locationOf: (d) => this.options.locations.get(d),
      }),
      relays: new RelayLedger({ startS, endS, readingHash: (origin, seq) => this.states.get(epoch)?.hashes.get(`${origin}/${seq}`) }),
      jobs: new Map(),
      readings: new Map(), hashes: new Map(), statuses: new Map(), refused: {},
    };
    this.states.set(epoch, s);
    // Uptime runs on from the last status before the epoch: a box with its own uplink says
    // nothing more until its will, and a mesh box's heartbeat may fall just before the start.
    for (const [device, last] of this.lastStatus) if (last.time < startS) s.statuses.set(device, [last]);
    for (const [id, entry] of this.jobs) s.jobs.set(id, new JobLedger(entry.job, [...entry.allocated], { startS, endS }));
    return s;
  }

  /** owners as the pairing registry had them when last looked at (refreshed when an epoch closes) */
  private owners = new Map<string, string>();

  private ownerOf(device: string): string | undefined {
    return this.owners.get(device);
  }

  /** The epoch a message of this time belongs to: its own while open, else the current one (whose ledger then refuses it as old). */
  private stateFor(timeS: number): EpochState {
    const current = Math.floor(this.now() / this.epochS);
    const epoch = Math.floor(timeS / this.epochS);
    return this.state(epoch === current - 1 && this.states.has(epoch) ? epoch : current);
  }

  onMessage(topic: string, bytes: Uint8Array): void {
    const job = JOB_TOPIC.exec(topic)?.[1];
    if (job !== undefined) return this.onJob(job, bytes);
    const m = DEVICE_TOPIC.exec(topic);
    if (!m || bytes.length === 0) return;
    const [, device, kind] = m as unknown as [string, string, string];
    if (bytes.length > MAX_BYTES) return this.refuse(undefined, 'too-large', `${bytes.length} bytes on ${topic}`);
    switch (kind) {
      case 'data': return this.onReading(device, bytes);
      case 'status': return this.onStatus(device, bytes);
      case 'jobs/answer': return this.onAnswer(device, bytes);
      default: return this.onSigned(device, kind, bytes);
    }
  }

  private onSigned(device: string, kind: string, bytes: Uint8Array): void {
    let opened;
    try {
      opened = openContribution(bytes);
    } catch (err) {
      return this.refuse(this.stateFor(this.now()), 'malformed', `${kind} of ${device}: ${errorMessage(err)}`);
    }
    const { message, signer } = opened;
    const current = this.stateFor(this.now());
    if (!opened.valid) return this.refuse(current, 'bad-signature', `${kind} on the topic of ${device}`);
    if (signer.id !== device || message.kind !== kind) return this.refuse(current, 'topic-mismatch', `a ${message.kind} signed by ${signer.id} on ${device}/${kind}`);
    if (message.kind === 'beacon') {
      const r = this.stateFor(message.body.time).presence.addBeacon(device, message.body, toHex(beaconId(bytes)));
      if (r.ok) this.counters.beacons++;
      else this.refused(r.reason, r.detail);
    } else if (message.kind === 'witness') {
      const r = this.stateFor(message.body.receivedAt).presence.addWitness(device, message.body);
      if (r.ok) this.counters.witnesses++;
      else this.refused(r.reason, r.detail);
    } else {
      const r = this.stateFor(message.body.time).relays.addAttestation(device, message.body);
      if (r.ok) this.counters.relays++;
      else this.refused(r.reason, r.detail);
    }
  }

  private refused(reason: string, detail: string): void {
    this.counters.refused++;
    this.errors.error(`contribution message refused (${reason}): ${detail}`);
  }

  private refuse(state: EpochState | undefined, reason: string, detail: string): void {
    if (state) state.refused[reason] = (state.refused[reason] ?? 0) + 1;
    this.refused(reason, detail);
  }

  private onReading(device: string, bytes: Uint8Array): void {
    let reading;
    try {
      reading = new ReadingVerifier().verify(bytes);
    } catch {
      return; // the gateway counts malformed readings
    }
    if (!reading.valid || reading.device !== device) return;
    const now = this.now();
    const s = this.stateFor(now);
    let r = s.readings.get(device);
    if (!r) s.readings.set(device, r = { seqs: new Set(), first: reading.seq, last: reading.seq });
    r.seqs.add(reading.seq);
    r.first = Math.min(r.first, reading.seq);
    r.last = Math.max(r.last, reading.seq);
    s.hashes.set(`${device}/${reading.seq}`, messageHash(bytes));
    this.counters.readings++;
    let offers = this.offers.get(device);
    if (!offers) this.offers.set(device, offers = new Map());
    for (const record of reading.records) {
      if (record.v === undefined || record.u === undefined) continue;
      const name = record.n.split('/').pop()!;
      offers.set(`${name}|${record.u}`, { name, unit: record.u });
      for (const ledger of s.jobs.values()) {
        ledger.add({ device, timeS: record.t ?? now, name, unit: record.u, value: record.v, location: this.options.locations.get(device) });
      }
    }
  }

  private onStatus(device: string, bytes: Uint8Array): void {
    let status: Record<string, unknown>;
    try {
      status = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof status.online !== 'boolean' || status.id !== device) return;
    const now = this.now();
    // A box with its own uplink has an MQTT will: online until it says otherwise. A box through the mesh has heartbeats.
    const everyS = typeof status.statusEveryS === 'number' ? status.statusEveryS : Infinity;
    let list = this.stateFor(now).statuses.get(device);
    if (!list) this.stateFor(now).statuses.set(device, list = []);
    const event = { time: now, online: status.online, everyS };
    list.push(event);
    this.lastStatus.set(device, event);
    this.counters.statuses++;
  }

  private onJob(id: string, bytes: Uint8Array): void {
    if (bytes.length === 0) {
      this.jobs.delete(id);
      return;
    }
    let job: Job;
    try {
      const opened = openJson(bytes);
      if (!this.options.jobIssuers.includes(opened.signer.id)) throw new Error(`signed by ${opened.signer.id}, not an authorised job issuer`);
      job = parseJob(opened.value, `job ${id}`);
      if (job.id !== id) throw new Error(`names job ${job.id} on the topic of ${id}`);
    } catch (err) {
      return this.refuse(undefined, 'bad-job', errorMessage(err));
    }
    this.jobs.set(id, { job, allocated: new Set(), declined: new Map() });
    this.counters.jobs++;
    void this.allocate().catch((err) => this.errors.error(`allocating jobs: ${errorMessage(err)}`));
  }

  private onAnswer(device: string, bytes: Uint8Array): void {
    let answer: { job?: unknown; accept?: unknown; reason?: unknown };
    try {
      answer = JSON.parse(new TextDecoder().decode(bytes)) as typeof answer;
    } catch {
      return;
    }
    const entry = typeof answer.job === 'string' ? this.jobs.get(answer.job) : undefined;
    if (!entry || answer.accept !== false) return;
    entry.allocated.delete(device);
    entry.declined.set(device, typeof answer.reason === 'string' ? answer.reason.slice(0, 200) : 'no reason given');
    this.ledgerOf(entry.job).allocate([...entry.allocated]);
  }

  /** The job's ledger in the current epoch. */
  private ledgerOf(job: Job): JobLedger {
    const s = this.state(Math.floor(this.now() / this.epochS));
    let ledger = s.jobs.get(job.id);
    if (!ledger) s.jobs.set(job.id, ledger = new JobLedger(job, [], { startS: s.epoch * this.epochS, endS: (s.epoch + 1) * this.epochS }));
    return ledger;
  }

  /** Allocates every job to the paired boxes that can serve it, and tells each box its jobs. */
  async allocate(): Promise<void> {
    const boxes = [...this.options.paired()].map(({ device }) => ({ device, location: this.options.locations.get(device), quantities: [...(this.offers.get(device)?.values() ?? [])] }));
    const perBox = new Map<string, Job[]>();
    for (const entry of this.jobs.values()) {
      const now = allocate(entry.job, boxes).filter((d) => !entry.declined.has(d) && entry.job.to > this.now());
      entry.allocated = new Set(now);
      this.ledgerOf(entry.job).allocate(now);
      for (const d of now) perBox.set(d, [...(perBox.get(d) ?? []), entry.job]);
    }
    const client = this.session.connectedClient;
    if (!client) return;
    // Each box's list, retained, when it changed (an empty list withdraws its jobs).
    for (const device of new Set([...perBox.keys(), ...this.told.keys()])) {
      const payload = JSON.stringify({ jobs: perBox.get(device) ?? [] });
      if (this.told.get(device) === payload) continue;
      await client.publishAsync(`${TOPIC_ROOT}/${device}/jobs`, payload, { qos: 1, retain: true });
      this.told.set(device, payload);
    }
  }

  /** what each box was last told on its jobs topic */
  private readonly told = new Map<string, string>();

  /** Closes every epoch whose grace has passed; allocates jobs to boxes that came since. */
  async tick(): Promise<void> {
    if (this.jobs.size) await this.allocate();
    const now = this.now();
    // Every epoch gets its table, one in which nothing came in too (stakes alone earn nothing).
    this.state(Math.floor(now / this.epochS));
    for (const epoch of [...this.states.keys()].sort((a, b) => a - b)) {
      if (now >= (epoch + 1) * this.epochS + (this.options.graceS ?? 600)) await this.close(epoch);
    }
  }

  /** Scores the epoch, writes and publishes its table, and forgets its messages. */
  async close(epoch: number): Promise<EpochTable> {
    // Stakes first: when they cannot be read (the chain's RPC down), the epoch stays open
    // for the next tick instead of being lost.
    const stakes = await this.options.stakes.stakes(epoch);
    const s = this.state(epoch);
    this.states.delete(epoch);
    const startS = epoch * this.epochS;
    const endS = startS + this.epochS;
    this.owners = new Map([...this.options.paired()].map((p) => [p.device, p.owner.toLowerCase()]));
    const presence = s.presence.settle();
    const devices = new Map<string, string | undefined>(this.owners);
    for (const d of [...s.readings.keys(), ...s.statuses.keys(), ...presence.byDevice.keys()]) if (!devices.has(d)) devices.set(d, undefined);
    const jobs = [...s.jobs.values()].map((j) => j.settle());
    const scored = scoreDevices({
      rules: defaultScoreRules(this.epochS, this.options.beaconPeriodS ?? DEFAULT_PRESENCE_RULES.beaconPeriodS),
      devices: [...devices].map(([device, owner]) => {
        const r = s.readings.get(device);
        return {
          device, owner,
          // The chain tells how many readings the box made between the first and last the gateway got.
          readingsExpected: r ? r.last - r.first + 1 : 0,
          readingsDelivered: r?.seqs.size ?? 0,
          uptimeS: uptimeSeconds(s.statuses.get(device) ?? [], startS, endS),
          beacons: presence.byDevice.has(device),
        };
      }),
      presence, relays: s.relays.settle(), jobs: jobs.map((j) => j.credits),
    });
    const table = epochTable({
      epoch, pool: this.options.pool, byStakeOnly: this.options.byStakeOnly ?? false, stakes, devices: scored,
      previous: previousCumulative(this.options.stateDir, epoch),
      counts: {
        beacons: presence.beacons, witnessesValid: presence.witnessesValid, witnessesUncredited: presence.witnessesUncredited,
        refused: { ...Object.fromEntries(Object.entries(presence.refused).filter(([, n]) => n > 0)), ...s.refused },
        relayUnmatched: s.relays.unmatched, relayRefused: s.relays.refused, outliers: jobs.flatMap((j) => j.flagged),
      },
    });
    const dir = join(this.options.stateDir, REWARDS_DIR);
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, `${epoch}.json`), JSON.stringify(table, null, 1) + '\n', 0o644);
    this.counters.tables++;
    await this.session.connectedClient?.publishAsync(`${TOPIC_ROOT}/rewards/${epoch}`, JSON.stringify(table), { qos: 1, retain: true });
    this.options.log.info(`epoch ${epoch}: ${scored.length} devices scored, root ${table.root ?? 'none'}`);
    return table;
  }
}

/** The cumulative amounts of the latest table before `epoch` in the state dir (none: zeros). */
export function previousCumulative(stateDir: string, epoch: number): Map<string, bigint> {
  const dir = join(stateDir, REWARDS_DIR);
  if (!existsSync(dir)) return new Map();
  const before = readdirSync(dir).map((f) => /^(\d+)\.json$/.exec(f)?.[1]).filter((e): e is string => e !== undefined).map(Number).filter((e) => e < epoch);
  if (before.length === 0) return new Map();
  return cumulativeOf(readTable(stateDir, Math.max(...before)));
}

export function readTable(stateDir: string, epoch: number): EpochTable {
  const path = join(stateDir, REWARDS_DIR, `${epoch}.json`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as EpochTable;
  } catch (err) {
    throw new Error(`epoch table ${path}: ${errorMessage(err)}`);
  }
}
