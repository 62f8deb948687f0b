// The mesh on a running box: links and router, and the choice of where readings go.
// A box whose MQTT uplink is up announces itself as an uplink and relays for others;
// a box without one sends its readings through the mesh to the best uplink box, and
// takes them back to MQTT as soon as its own uplink returns.
import { realClock } from '../../drivers/clock.ts';
import type { Link } from '../../drivers/link.ts';
import { openUdpLinks } from '../../drivers/udp-link.ts';
import { MeshNode } from '../../mesh/node.ts';
import type { Box } from '../box.ts';
import type { MeshConfig, UplinkConfig } from '../config/schema.ts';
import { IopError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Forwarder } from '../uplink/forwarder.ts';
import { createForwarder, type Uplink } from '../uplink/uplink.ts';
import { VERSION } from '../version.ts';
import { UplinkBridge } from './bridge.ts';
import { MeshPublisher } from './mesh-publisher.ts';
import { RelayedStatus } from './relayed-status.ts';
import { MeshStatusSender } from './status-sender.ts';
import { meshNodeId, nextMeshEpoch, readMeshKey } from './setup.ts';

const CHECK_EVERY_MS = 250;
/** a reading published this long before a receipt that does not cover it is taken as lost */
const GAP_GRACE_MS = 5000;

export interface MeshService {
  readonly node: MeshNode;
  readonly forwarder: Forwarder;
  start(): void;
  /** A reading was stored. */
  notify(): void;
  status(): object;
  stop(): Promise<void>;
}

export async function startMesh(options: { config: MeshConfig; uplinkConfig: UplinkConfig; stateDir: string; box: Box; uplink: Uplink | undefined; log: Logger }): Promise<MeshService> {
  const { config, box, uplink, log } = options;
  const key = readMeshKey(config.keyFile!);
  // Before any socket opens: an unusable pinned-gateway file stops the agent here.
  const forwarder = uplink?.forwarder ?? createForwarder(options.uplinkConfig, options.stateDir, box, log);
  let links: Link[];
  try {
    links = await openUdpLinks(config.links.map((l) => ({ interface: l.interface, port: l.port, group: l.group })));
  } catch (err) {
    throw new IopError('CONFIG', `mesh.links: ${errorMessage(err)}`);
  }
  const epoch = nextMeshEpoch(options.stateDir);
  const meshLog = log.child('mesh');
  const node = new MeshNode({
    id: meshNodeId(box.identity.publicKey), key, epoch, clock: realClock, links,
    timers: config.timers, hopLimit: config.hopLimit, fragmentBytes: config.fragmentBytes,
    log: { debug: (m) => meshLog.debug(m), warn: (m) => meshLog.warn(m) },
  });
  const publisher = new MeshPublisher(node);
  const bridge = uplink ? new UplinkBridge(node, uplink.session, meshLog, config.receiptHoldMs) : undefined;
  const relayedStatus = uplink ? new RelayedStatus({ session: uplink.session, relayId: box.identity.id, clock: realClock, log: meshLog }) : undefined;
  const statusSender = new MeshStatusSender({ node, box, version: VERSION, everyMs: config.statusEveryMs, epoch, clock: realClock, log: meshLog });
  node.onMessage((message) => {
    switch (message.type) {
      case 'reading': bridge?.onReading(message); break;
      case 'receipt': forwarder.onReceipt(message.payload); break;
      case 'status': relayedStatus?.onStatus(message); break;
    }
  });

  let via: string | undefined;
  const choose = () => {
    const direct = uplink?.session.connected ?? false;
    node.announce(direct ? 'uplink' : config.announce === 'always' ? 'node' : 'no');
    if (direct) {
      if (forwarder.attached === publisher) publisher.abandon();
      via = undefined;
      statusSender.update(undefined);
      return;
    }
    const best = node.bestUplink();
    if (best && forwarder.attached !== publisher) {
      forwarder.attach(publisher, { window: config.window, receiptTimeoutMs: config.receiptHoldMs + config.ackTimeoutMs, gapGraceMs: GAP_GRACE_MS });
      meshLog.info(`no uplink of its own: readings go through the mesh to uplink box ${best.idHex}`);
    } else if (!best && forwarder.attached === publisher) {
      forwarder.detach();
      publisher.abandon();
      meshLog.info('no uplink box reachable through the mesh: readings wait in the store');
    }
    if (best && best.idHex !== via) forwarder.notify();
    via = best?.idHex;
    statusSender.update(via);
  };
  let timer: NodeJS.Timeout | undefined;
  uplink?.session.on('connect', () => setImmediate(choose));
  uplink?.session.on('disconnect', () => setImmediate(choose));

  return {
    node,
    forwarder,
    start() {
      node.start();
      meshLog.info(`mesh node ${node.idHex} (epoch ${epoch}) on ${links.map((l) => `${l.name} ${l.address}`).join(', ')}`);
      choose();
      timer = setInterval(choose, CHECK_EVERY_MS);
      timer.unref();
    },
    notify: () => forwarder.notify(),
    status: () => ({
      ...node.status(), relay: bridge?.counters ?? null, via: via ?? null,
      receipts: { accepted: forwarder.counters.receipts, refused: forwarder.trust.refused },
      status: { sent: statusSender.counters, relayed: relayedStatus?.status() ?? null },
    }),
    async stop() {
      clearInterval(timer);
      await statusSender.stop();
      relayedStatus?.stop();
      node.announce('no');
      // Let the retraction go out before the links close.
      await new Promise((resolve) => setTimeout(resolve, 50));
      node.stop();
      publisher.abandon();
      if (!uplink) forwarder.stop();
      for (const l of links) l.close();
    },
  };
}
