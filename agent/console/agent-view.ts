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
import { lastValueOf, meshView, type LastValues } from './box-facts.ts';

export { LastValues, lastValueOf, meshView } from './box-facts.ts';

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
