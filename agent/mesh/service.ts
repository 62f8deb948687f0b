// The mesh on a running box: links and router, and the choice of where readings go.
// A box whose MQTT uplink is up announces itself as an uplink and relays for others;
// a box without one sends its readings through the mesh to the best uplink box, and
// takes them back to MQTT as soon as its own uplink returns.
import { realClock } from '../../drivers/clock.ts';
import type { Link } from '../../drivers/link.ts';
import { MeshNode } from '../../mesh/node.ts';
import type { Box } from '../box.ts';
import type { MeshConfig, UplinkConfig } from '../config/schema.ts';
import { IopError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Forwarder } from '../uplink/forwarder.ts';
import { createForwarder, type Uplink } from '../uplink/uplink.ts';
import { VERSION } from '../version.ts';
import { contributionOnBox } from '../contribution/box-wiring.ts';
import { UplinkBridge } from './bridge.ts';
import { fittingFragmentBytes, openMeshLinks, startLinks } from './links.ts';
import { MeshPublisher } from './mesh-publisher.ts';
import { MeshRole } from './mesh-role.ts';
import { RelayedStatus } from './relayed-status.ts';
import { MeshStatusSender } from './status-sender.ts';
import { meshNodeId, meshSeqnoStore, nextMeshEpoch, readMeshKey } from './setup.ts';

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
    links = await openMeshLinks(config, meshNodeId(box.identity.publicKey), log);
  } catch (err) {
    throw new IopError('CONFIG', `mesh.links: ${errorMessage(err)}`);
  }
  const epoch = nextMeshEpoch(options.stateDir);
  const meshLog = log.child('mesh');
  const fragmentBytes = fittingFragmentBytes(config.fragmentBytes, links);
  if (fragmentBytes < config.fragmentBytes) meshLog.info(`fragments of ${fragmentBytes} bytes: the smallest link MTU is ${Math.min(...links.map((l) => l.mtu))}`);
  // Beacon frames are the contribution's (docs/rewards.md); every other frame the router's.
  const contribution = contributionOnBox({ config, links, box, log: meshLog });
  const node = new MeshNode({
    id: meshNodeId(box.identity.publicKey), key, epoch, clock: realClock, links: contribution.links,
    timers: config.timers, hopLimit: config.hopLimit, fragmentBytes, seqno: meshSeqnoStore(options.stateDir),
    log: { debug: (m) => meshLog.debug(m), warn: (m) => meshLog.warn(m) },
  });
  const publisher = new MeshPublisher(node);
  const bridge = uplink ? new UplinkBridge(node, uplink.session, meshLog, config.receiptHoldMs) : undefined;
  const relayedStatus = uplink ? new RelayedStatus({ session: uplink.session, relayId: box.identity.id, clock: realClock, log: meshLog }) : undefined;
  const statusSender = new MeshStatusSender({ node, box, version: VERSION, everyMs: config.statusEveryMs, epoch, clock: realClock, log: meshLog });
  const role = new MeshRole({
    node, forwarder, publisher, bridge, config, direct: () => uplink?.session.connected ?? false, clock: realClock, log: meshLog,
    onStatus: (message) => relayedStatus?.onStatus(message),
    onReport: (message) => contribution.part?.onReport(message),
    onVia: (via) => statusSender.update(via),
  });
  contribution.attach(node, bridge, () => (uplink?.session.connected ? uplink.session.current : undefined));
  uplink?.session.on('connect', () => setImmediate(() => role.choose()));
  uplink?.session.on('disconnect', () => setImmediate(() => role.choose()));

  return {
    node,
    forwarder,
    start() {
      node.start();
      startLinks(links);
      meshLog.info(`mesh node ${node.idHex} (epoch ${epoch}) on ${links.map((l) => `${l.name} ${l.address}`).join(', ')}`);
      role.start();
      contribution.part?.start();
    },
    notify: () => forwarder.notify(),
    status: () => {
      const status = node.status();
      // Radios add their airtime, budget and error counters to the node's per-link figures.
      const linkStatus = status.links.map((l, i) => ({ ...l, ...(links[i]!.report?.() ?? {}) }));
      return {
        ...status, links: linkStatus, relay: bridge?.counters ?? null, via: role.via ?? null,
        receipts: { accepted: forwarder.counters.receipts, refused: forwarder.trust.refused },
        status: { sent: statusSender.counters, relayed: relayedStatus?.status() ?? null },
        contribution: contribution.part?.status() ?? null,
      };
    },
    async stop() {
      role.stop();
      contribution.part?.stop();
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
