// A box's side of contribution (docs/rewards.md): beacons on its radio links and
// witnesses of its neighbours' (Beaconer), sent on its own topics while its uplink is up
// and through the mesh (data type `report`) otherwise; as an uplink box, the reports that
// others sent it through the mesh, published on their signers' topics once checked, and
// an hourly relay attestation of the readings it relayed.
import type { Clock, TimerHandle } from '../../drivers/clock.ts';
import type { MeshMessage, MeshNode } from '../../mesh/node.ts';
import { nodeIdHex } from '../../mesh/packet.ts';
import { messageHash } from '../codec/chain.ts';
import { identityFromId, type DeviceIdentity } from '../codec/identity.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { RelayClient } from '../mesh/bridge.ts';
import { meshNodeId } from '../mesh/setup.ts';
import { RateLimitedLog } from '../uplink/rate-limited-log.ts';
import { TOPIC_ROOT } from '../uplink/topics.ts';
import { Beaconer, type BeaconRadio } from './beaconer.ts';
import { openContribution, signContribution, type ContributionMessage } from './messages.ts';
import { RelayBatcher } from './relay.ts';
import { ReportQueue } from './report-queue.ts';

const ATTEST_EVERY_MS = 3_600_000;

export interface BoxContributionOptions {
  identity: DeviceIdentity;
  signSync: (toBeSigned: Uint8Array) => Uint8Array;
  node: MeshNode;
  radios: readonly BeaconRadio[];
  /** the box's MQTT client while its own uplink is up */
  client: () => RelayClient | undefined;
  clock: Clock;
  random: () => number;
  nowS: () => number;
  periodS: number;
  log: Logger;
}

export class BoxContribution {
  private readonly options: BoxContributionOptions;
  private readonly beaconer: Beaconer | undefined;
  private readonly batcher = new RelayBatcher();
  private readonly errors: RateLimitedLog;
  private timer: TimerHandle | undefined;
  private readonly sign: (message: ContributionMessage) => Uint8Array;
  private readonly queue: ReportQueue;
  readonly counters = { published: 0, throughMesh: 0, relayedReports: 0, rejectedReports: 0, attestations: 0, lost: 0 };

  constructor(options: BoxContributionOptions) {
    this.options = options;
    this.errors = new RateLimitedLog(options.log);
    this.sign = (message) => signContribution(options.identity, message, options.signSync);
    this.queue = new ReportQueue(options.node, options.clock);
    this.beaconer = options.radios.length && options.periodS > 0
      ? new Beaconer({ identity: options.identity, sign: this.sign, radios: options.radios, clock: options.clock, random: options.random, nowS: options.nowS, periodS: options.periodS, report: (kind, bytes) => this.send(kind, bytes) })
      : undefined;
  }

  start(): void {
    this.beaconer?.start();
    this.timer = this.options.clock.setTimeout(() => this.attest(true), ATTEST_EVERY_MS);
  }

  stop(): void {
    this.beaconer?.stop();
    this.queue.stop();
    this.options.clock.clearTimeout(this.timer);
    this.attest(false);
  }

  status(): object {
    return { ...this.counters, beacons: this.beaconer?.counters ?? null, queue: this.queue.counters, relayedFor: Object.fromEntries(this.batcher.carried) };
  }

  /** The bridge relayed a reading of `device` to the broker. */
  relayed(device: string, seq: number, reading: Uint8Array): void {
    try {
      this.batcher.add(identityFromId(device).kid, seq, messageHash(reading));
    } catch (err) {
      this.errors.error(`relay count for ${device}: ${errorMessage(err)}`);
    }
  }

  /** A beacon or witness another box sent through the mesh to this uplink box. */
  onReport(message: MeshMessage): void {
    try {
      const opened = openContribution(message.payload);
      if (!opened.valid) throw new Error('signature does not verify');
      if (nodeIdHex(meshNodeId(opened.signer.publicKey)) !== message.originHex) throw new Error(`signed by ${opened.signer.id}, whose mesh id is not the origin ${message.originHex}`);
      if (opened.message.kind === 'relay') throw new Error('relay attestations come from uplink boxes only');
      this.counters.relayedReports++;
      this.publish(opened.signer.id, opened.message.kind, message.payload);
    } catch (err) {
      this.counters.rejectedReports++;
      this.errors.error(`report from mesh node ${message.originHex} rejected: ${errorMessage(err)}`);
    }
  }

  private send(kind: 'beacon' | 'witness', bytes: Uint8Array): void {
    if (this.options.client()) return this.publish(this.options.identity.id, kind, bytes);
    this.counters.throughMesh++;
    this.queue.add(bytes);
  }

  private publish(device: string, kind: string, bytes: Uint8Array): void {
    const client = this.options.client();
    if (!client) {
      this.counters.lost++;
      return;
    }
    client.publish(`${TOPIC_ROOT}/${device}/${kind}`, Buffer.from(bytes), { qos: 1 }, (err) => {
      if (err) this.counters.lost++;
      else this.counters.published++;
    });
  }

  private attest(again: boolean): void {
    for (const body of this.batcher.flush(Math.floor(this.options.nowS()))) {
      this.counters.attestations++;
      this.publish(this.options.identity.id, 'relay', this.sign({ kind: 'relay', body }));
    }
    if (again) this.timer = this.options.clock.setTimeout(() => this.attest(true), ATTEST_EVERY_MS);
  }
}
