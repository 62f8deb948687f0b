// What the console sees of the running agent: public facts gathered from the box, the
// uplink and the mesh. The device key object is never handed to the console.
import { toHex } from '../codec/hex.ts';
import type { SenmlPack } from '../codec/senml.ts';
import type { Box } from '../box.ts';
import type { MeshService } from '../mesh/service.ts';
import type { Pairing } from '../pairing/pairing.ts';
import type { Uplink } from '../uplink/uplink.ts';
import { VERSION } from '../version.ts';
import type { ConsoleAgent, MeshView, SensorView, StatusSnapshot } from './commands.ts';
import type { LogRing } from './log-ring.ts';
import { storeBroker, storeWifi } from './settings.ts';

/** The last value of each record name, fed from the sampler's packs. */
export class LastValues {
  readonly byName = new Map<string, { value: number | string | boolean; unit?: string; timeS: number }>();

  onPack(pack: SenmlPack): void {
    for (const r of pack.records) {
      const value = r.v ?? r.vs ?? r.vb;
      if (value === undefined) continue;
      // A pack without trusted time is shown by its arrival on this box's clock.
      this.byName.set(r.n, { value, ...(r.u ? { unit: r.u } : {}), timeS: (pack.time ?? Date.now() / 1000) + (r.t ?? 0) });
    }
  }
}

/** The last value of a sensor: its record of the same name, or its first sub-record (name/...). */
export function lastValueOf(values: LastValues, sensor: string) {
  return values.byName.get(sensor) ?? [...values.byName].find(([n]) => n.startsWith(`${sensor}/`))?.[1];
}

export interface AgentViewOptions {
  box: Box;
  broker: string | null;
  uplink: () => Uplink | undefined;
  mesh: () => MeshService | undefined;
  stateDir: string;
  meshEnabled: boolean;
  ring: LogRing;
  values: LastValues;
  pairing: Pairing;
  claimPending: () => boolean;
  restart: () => void;
  startedAt?: number;
}

export function meshView(status: Record<string, unknown>): MeshView {
  const s = status as { node: string; neighbours: { node: string; link: string; cost: number }[]; routes: { uplink?: boolean; selected: boolean; via: string | null; total: number }[]; via?: string | null };
  const best = s.routes.filter((r) => r.uplink && r.selected && r.via).sort((a, b) => a.total - b.total)[0];
  return {
    node: s.node,
    neighbours: s.neighbours.map((n) => ({ node: n.node, link: n.link, cost: n.cost })),
    uplinkVia: best?.via ?? null,
    uplinkMetric: best?.total ?? null,
  };
}

export function createAgentView(options: AgentViewOptions): ConsoleAgent {
  const { box, values } = options;
  const startedAt = options.startedAt ?? performance.now();
  const sensors = (): SensorView[] => box.sensors.map((sensor) => {
    const health = sensor.health();
    const last = lastValueOf(values, sensor.name);
    return {
      name: sensor.name, kind: sensor.kind,
      ...(last ? { value: last.value, ...(last.unit ? { unit: last.unit } : {}), at: new Date(last.timeS * 1000).toISOString() } : {}),
      ...(!health.ok && health.lastError ? { error: health.lastError } : {}),
    };
  });
  return {
    identity: () => ({ id: box.identity.id, publicKey: toHex(box.identity.publicKey), scheme: box.identity.scheme.name }),
    status(): StatusSnapshot {
      const mesh = options.mesh();
      return {
        device: box.identity.id,
        version: VERSION,
        uptimeS: Math.round((performance.now() - startedAt) / 1000),
        // The same judgement readings are stamped with (agent/time): ntp, gps, or none.
        time: { wall: new Date().toISOString(), quality: box.time.stamp().quality },
        uplink: { broker: options.broker, connected: options.uplink()?.session.connected ?? false },
        queue: box.journal.count(),
        owner: options.pairing.owner,
        sensors: sensors(),
        mesh: mesh ? meshView(mesh.status() as Record<string, unknown>) : null,
      };
    },
    logs: (count) => options.ring.last(count),
    pairing: options.pairing,
    claimPending: options.claimPending,
    setBroker: (url) => storeBroker(options.stateDir, url),
    meshEnabled: options.meshEnabled,
    setWifi: (iface, wifi) => storeWifi(options.stateDir, iface, wifi),
    restart: options.restart,
  };
}
