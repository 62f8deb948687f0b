// What a mesh router shows of itself (the agent's status and metrics, `iop-agent mesh`):
// its links, neighbours with their link costs, routes with the one selected, counters.
import type { Link } from '../drivers/link.ts';
import type { NeighbourTable } from './neighbours.ts';
import { INFINITE_METRIC } from './packet.ts';
import type { RouteTable } from './routes.ts';
import type { MeshCounters } from './types.ts';

export interface NodeParts {
  idHex: string;
  epoch: number;
  announcing: 'no' | 'node' | 'uplink';
  links: Link[];
  neighbours: NeighbourTable;
  routes: RouteTable;
  counters: MeshCounters;
  controlTlvs: Record<string, number>;
  now: number;
}

export function nodeStatus(p: NodeParts) {
  const { links, neighbours, routes } = p;
  return {
    node: p.idHex,
    epoch: p.epoch,
    announcing: p.announcing,
    links: links.map((l) => ({ name: l.name, address: l.address, mtu: l.mtu, ...l.stats })),
    neighbours: neighbours.all().map((n) => ({
      node: n.idHex, link: links[n.link]!.name, address: n.address,
      cost: neighbours.cost(n), rxcost: neighbours.rxcost(n), txcost: n.txcost,
      helloIntervalMs: n.intervalMs, heardMsAgo: Math.round(p.now - n.lastHeard),
      ...(n.rssi !== undefined ? { rssi: n.rssi } : {}), ...(n.snr !== undefined ? { snr: n.snr } : {}),
    })),
    routes: routes.all().map((r) => {
      const chosen = routes.selectedRoute(r.sourceHex);
      const n = neighbours.get(r.via);
      return {
        dest: r.sourceHex, uplink: r.uplink, seqno: r.seqno, metric: r.metric,
        via: n?.idHex ?? null, link: n ? links[n.link]!.name : null,
        total: n ? Math.min(INFINITE_METRIC, r.metric + neighbours.cost(n)) : INFINITE_METRIC,
        selected: chosen?.via === r.via,
      };
    }),
    counters: p.counters,
    controlTlvs: p.controlTlvs,
  };
}
