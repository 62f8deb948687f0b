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
import { UplinkBridge } from './bridge.ts';
import { MeshPublisher } from './mesh-publisher.ts';
import { MeshRole } from './mesh-role.ts';
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
    timers: config.timers, hopLimit: config.hopLimit, fragmentBytes: config.fragmentBytes, seqno: meshSeqnoStore(options.stateDir),
    log: { debug: (m) => meshLog.debug(m), warn: (m) => meshLog.warn(m) },
  });
  const forwarder = uplink?.forwarder ?? createForwarder(options.uplinkConfig, options.stateDir, box, log);
  const publisher = new MeshPublisher(node);
  const bridge = uplink ? new UplinkBridge(node, uplink.session, meshLog, config.receiptHoldMs) : undefined;
  const role = new MeshRole({ node, forwarder, publisher, bridge, config, direct: () => uplink?.session.connected ?? false, clock: realClock, log: meshLog });
  uplink?.session.on('connect', () => setImmediate(() => role.choose()));
  uplink?.session.on('disconnect', () => setImmediate(() => role.choose()));

  return {
    node,
    forwarder,
    start() {
      node.start();
      meshLog.info(`mesh node ${node.idHex} (epoch ${epoch}) on ${links.map((l) => `${l.name} ${l.address}`).join(', ')}`);
      role.start();
    },
    notify: () => forwarder.notify(),
    status: () => ({ ...node.status(), relay: bridge?.counters ?? null, via: role.via ?? null }),
    async stop() {
      role.stop();
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
