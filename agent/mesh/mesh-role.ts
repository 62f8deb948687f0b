// What a box does with the mesh, links aside: where its own readings go (to MQTT while
// its uplink is up, else through the mesh to the best uplink box), what it announces,
// and which part takes a message that arrives. startMesh (service.ts) runs it on UDP
// links in real time; the simulator runs the same class on simulated radios in virtual
// time.
import type { Clock, TimerHandle } from '../../drivers/clock.ts';
import type { MeshNode } from '../../mesh/node.ts';
import type { MeshMessage } from '../../mesh/types.ts';
import type { MeshConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Forwarder } from '../uplink/forwarder.ts';
import type { UplinkBridge } from './bridge.ts';
import type { MeshPublisher } from './mesh-publisher.ts';

const CHECK_EVERY_MS = 250;

export interface MeshRoleOptions {
  node: MeshNode;
  forwarder: Forwarder;
  publisher: MeshPublisher;
  /** relays for the others while this box's own uplink is up; none on a box without one */
  bridge: UplinkBridge | undefined;
  config: Pick<MeshConfig, 'announce' | 'window' | 'receiptHoldMs' | 'ackTimeoutMs'>;
  /** this box's own MQTT uplink is up */
  direct: () => boolean;
  clock: Clock;
  log: Logger;
  /** a status a box without an uplink of its own sent through the mesh (uplink boxes publish it) */
  onStatus?: (message: MeshMessage) => void;
  /** a beacon or witness a box sent through the mesh (uplink boxes publish it: docs/rewards.md) */
  onReport?: (message: MeshMessage) => void;
  /** the uplink box this box's readings go to changed (undefined: none, or its own uplink) */
  onVia?: (via: string | undefined) => void;
}

export class MeshRole {
  private readonly options: MeshRoleOptions;
  private timer: TimerHandle | undefined;
  /** since when no uplink box is reachable, while the forwarder still sends through the mesh */
  private lostSince: number | undefined;
  /** the uplink box this box's readings go to, if they go through the mesh */
  via: string | undefined;

  constructor(options: MeshRoleOptions) {
    this.options = options;
    const { node, forwarder, bridge } = options;
    node.onMessage((message) => {
      switch (message.type) {
        case 'reading': bridge?.onReading(message); break;
        case 'receipt': forwarder.onReceipt(message.payload); break;
        case 'status': options.onStatus?.(message); break;
        case 'report': options.onReport?.(message); break;
      }
    });
  }

  start(): void {
    this.choose();
    const check = () => {
      this.choose();
      this.timer = this.options.clock.setTimeout(check, CHECK_EVERY_MS);
    };
    this.timer = this.options.clock.setTimeout(check, CHECK_EVERY_MS);
  }

  stop(): void {
    this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Announces what this box offers and sends its readings the way that works now. */
  choose(): void {
    const { node, forwarder, publisher, config, log } = this.options;
    const direct = this.options.direct();
    node.announce(direct ? 'uplink' : config.announce === 'always' ? 'node' : 'no');
    if (direct) {
      if (forwarder.attached === publisher) publisher.abandon();
      this.via = undefined;
      this.options.onVia?.(undefined);
      return;
    }
    const best = node.bestUplink();
    const receiptTimeoutMs = config.receiptHoldMs + config.ackTimeoutMs;
    const now = this.options.clock.now();
    if (best) this.lostSince = undefined;
    else this.lostSince ??= now;
    if (best && forwarder.attached !== publisher) {
      // No gap resends (the forwarder's gapGraceMs): a reading a receipt shows missing goes
      // again at the receipt timeout, with the oldest. Sent again within seconds, on 200
      // simulated boxes such readings met the congestion that lost them and added to it.
      forwarder.attach(publisher, { window: config.window, receiptTimeoutMs });
      log.info(`no uplink of its own: readings go through the mesh to uplink box ${best.idHex}`);
    } else if (!best && forwarder.attached === publisher && now - this.lostSince! >= receiptTimeoutMs) {
      // Routes on a radio mesh come and go for seconds at a time. Readings the first hop
      // took before may still arrive and be receipted, so the forwarder stays on the mesh
      // (a publish fails meanwhile and is tried again) as long as it would wait for a
      // receipt anyway: detaching would publish every unreceipted reading again on return.
      forwarder.detach();
      publisher.abandon();
      log.info('no uplink box reachable through the mesh: readings wait in the store');
    }
    if (best && best.idHex !== this.via) forwarder.retryNow();
    this.via = best?.idHex;
    this.options.onVia?.(this.via);
  }
}
