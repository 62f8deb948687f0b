// The running agent's Prometheus metrics (docs/metrics.md): readings through the store
// and the uplink, sensors, the mesh, and prom-client's process and event-loop metrics.
// Every value is read at scrape time from the agent's own counters; one snapshot of the
// journal per scrape keeps the figures of a scrape consistent with each other.
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { SensorHealth } from '../../sensors/sensor.ts';
import type { Box } from '../box.ts';
import type { JournalStats } from '../store/journal.ts';
import type { MeshService } from '../mesh/service.ts';
import type { Uplink } from '../uplink/uplink.ts';
import { VERSION } from '../version.ts';
import { sampledCounter, sampledGauge, type Labels } from './sampled.ts';

export const METRICS_PREFIX = 'iop_agent_';

/** What the run loop counts itself: readings it stored, and readings the store refused. */
export interface RecordCounters {
  stored: number;
  failed: number;
}

export interface MetricsSources {
  box: Pick<Box, 'identity' | 'journal' | 'sensors' | 'time'>;
  uplink: () => Uplink | undefined;
  /** Present when the mesh is enabled (the service itself starts later). */
  mesh?: (() => MeshService | undefined) | undefined;
  recorded: RecordCounters;
}

export interface AgentMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The exposition text of one scrape. */
  scrape(): Promise<string>;
}

/** The parts of `iop-agent mesh --json` the metrics read. */
interface MeshStatus {
  links: { name: string; txFrames: number; txBytes: number; rxFrames: number; rxBytes: number; airtimeMs: number; budgetLeftMs?: number | null; errors?: Record<string, number> }[];
  neighbours: unknown[];
  routes: { uplink?: boolean; selected: boolean }[];
  counters: { forwarded: number; delivered: number; heldForBudget: number; dropped: Record<string, number>; rejected: Record<string, number> };
}

interface Snapshot {
  queue: JournalStats;
  oldestStoredAtMs: number | undefined;
  mesh: MeshStatus | undefined;
}

export function createAgentMetrics(sources: MetricsSources): AgentMetrics {
  const { box } = sources;
  const registry = new Registry();
  // RSS, CPU, heap, file descriptors, GC and event-loop lag, under the agent's prefix.
  // The event-loop monitor wakes the loop at its resolution: prom-client's 10 ms would be
  // 100 wake-ups a second on an idle box; a lag worth alerting on is far above 100 ms.
  collectDefaultMetrics({ register: registry, prefix: METRICS_PREFIX, eventLoopMonitoringPrecision: 100 });
  // Gauges that prom-client names like counters (promtool's lint refuses them); the
  // handle and request counts are debugging aids, not health.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(METRICS_PREFIX + name);

  let snapshot: Snapshot | undefined;
  const take = (): Snapshot => {
    const mesh = sources.mesh?.();
    return {
      queue: box.journal.stats(),
      oldestStoredAtMs: box.journal.oldestStoredAtMs(),
      mesh: mesh ? (mesh.status() as MeshStatus) : undefined,
    };
  };
  const now = () => (snapshot ??= take());
  const forwarder = () => sources.uplink()?.forwarder ?? sources.mesh?.()?.forwarder;
  const counter = (name: string, help: string, read: () => number | undefined) => sampledCounter(registry, { name: METRICS_PREFIX + name, help, read });
  const gauge = (name: string, help: string, read: () => number | undefined) => sampledGauge(registry, { name: METRICS_PREFIX + name, help, read });

  sampledGauge(registry, { name: `${METRICS_PREFIX}info`, help: 'The agent: version and device id (always 1)', labelNames: ['version', 'device'],
    read: () => [[{ version: VERSION, device: box.identity.id }, 1]] });
  gauge('time_trusted', 'Whether readings are stamped with a trusted time (NTP or GPS): 1, else 0', () => (box.time.stamp().quality === 'none' ? 0 : 1));

  // Readings, from the sampler to a receipt.
  counter('readings_signed_total', 'Readings signed into the box\'s hash chain since its device key was made (chain head seq + 1)', () => (now().queue.head ?? -1) + 1);
  counter('readings_stored_total', 'Readings this agent process signed and stored', () => sources.recorded.stored);
  counter('readings_store_failures_total', 'Readings lost because the store refused them (full or failing disk)', () => sources.recorded.failed);
  counter('readings_published_total', 'Readings published to the broker or the mesh, resends included', () => forwarder()?.counters.published ?? 0);
  sampledCounter(registry, { name: `${METRICS_PREFIX}readings_resent_total`, help: 'Readings published again, by reason (timeout: no receipt in time; gap: a receipt showed them missing)', labelNames: ['reason'],
    read: () => [[{ reason: 'timeout' }, forwarder()?.counters.resentTimeout ?? 0], [{ reason: 'gap' }, forwarder()?.counters.resentGap ?? 0]] });
  counter('readings_receipted_total', 'Readings freed by a gateway receipt (with uplink.ack: broker, by the broker\'s PUBACK)', () => forwarder()?.counters.receipted ?? 0);
  counter('readings_dropped_total', 'Readings dropped unacknowledged because the queue was full (store.maxMessages)', () => now().queue.dropped);
  sampledCounter(registry, { name: `${METRICS_PREFIX}receipts_total`, help: 'Gateway receipts, by result (accepted, or refused: untrusted signer or not this box\'s chain)', labelNames: ['result'],
    read: () => [[{ result: 'accepted' }, forwarder()?.counters.receipts ?? 0], [{ result: 'refused' }, forwarder()?.counters.rejectedReceipts ?? 0]] });
  gauge('queue_readings', 'Readings stored and waiting for a receipt', () => now().queue.stored);
  gauge('queue_oldest_age_seconds', 'Age of the oldest reading waiting (0 when none)', () => {
    const at = now().oldestStoredAtMs;
    return at === undefined ? 0 : Math.max(0, (Date.now() - at) / 1000);
  });

  // The MQTT uplink.
  gauge('uplink_connected', 'Whether the MQTT uplink is connected: 1, else 0 (also 0 without a broker)', () => (sources.uplink()?.session.connected ? 1 : 0));
  counter('uplink_reconnects_total', 'MQTT connections made again after the first one', () => Math.max(0, (sources.uplink()?.session.counters.connects ?? 0) - 1));

  // Sensors.
  const perSensor = (value: (health: SensorHealth) => number) => () =>
    box.sensors.map((sensor): readonly [Labels, number] => [{ sensor: sensor.name }, value(sensor.health())]);
  sampledCounter(registry, { name: `${METRICS_PREFIX}sensor_reads_total`, help: 'Sensor reads, by sensor', labelNames: ['sensor'], read: perSensor((h) => h.reads) });
  sampledCounter(registry, { name: `${METRICS_PREFIX}sensor_read_errors_total`, help: 'Sensor reads that gave no value, by sensor', labelNames: ['sensor'], read: perSensor((h) => h.failures) });
  sampledGauge(registry, { name: `${METRICS_PREFIX}sensor_ok`, help: 'Whether the sensor\'s last read gave a value: 1, else 0', labelNames: ['sensor'], read: perSensor((h) => (h.ok ? 1 : 0)) });

  if (sources.mesh) registerMeshMetrics(registry, () => now().mesh);

  return {
    registry,
    contentType: registry.contentType,
    async scrape() {
      snapshot = undefined;
      try {
        return await registry.metrics();
      } finally {
        snapshot = undefined;
      }
    },
  };
}

/** The mesh's figures, as `iop-agent mesh --json` shows them; no series before the mesh runs. */
function registerMeshMetrics(registry: Registry, mesh: () => MeshStatus | undefined): void {
  const perLink = (name: string, help: string, value: (link: MeshStatus['links'][number]) => number | null | undefined, kind: 'counter' | 'gauge' = 'counter') =>
    (kind === 'counter' ? sampledCounter : sampledGauge)(registry, {
      name: METRICS_PREFIX + name, help, labelNames: ['link'],
      read: () => (mesh()?.links ?? []).flatMap((link): (readonly [Labels, number])[] => {
        const v = value(link);
        return v === null || v === undefined ? [] : [[{ link: link.name }, v]];
      }),
    });
  const byCause = (name: string, help: string, counts: (status: MeshStatus) => Record<string, number>) =>
    sampledCounter(registry, { name: METRICS_PREFIX + name, help, labelNames: ['cause'],
      read: () => { const s = mesh(); return s ? Object.entries(counts(s)).map(([cause, v]): readonly [Labels, number] => [{ cause }, v]) : undefined; } });
  const whole = (name: string, help: string, value: (status: MeshStatus) => number, kind: 'counter' | 'gauge') =>
    (kind === 'counter' ? sampledCounter : sampledGauge)(registry, { name: METRICS_PREFIX + name, help, read: () => { const s = mesh(); return s ? value(s) : undefined; } });

  whole('mesh_neighbours', 'Mesh neighbours heard', (s) => s.neighbours.length, 'gauge');
  whole('mesh_routes', 'Mesh routes known (selected or not)', (s) => s.routes.length, 'gauge');
  whole('mesh_uplink_routes', 'Selected mesh routes to a box with an uplink', (s) => s.routes.filter((r) => r.uplink && r.selected).length, 'gauge');
  whole('mesh_forwarded_total', 'Mesh data packets forwarded for other boxes', (s) => s.counters.forwarded, 'counter');
  whole('mesh_delivered_total', 'Mesh messages delivered to this box', (s) => s.counters.delivered, 'counter');
  whole('mesh_held_for_budget_total', 'Mesh sends held back for the duty-cycle budget', (s) => s.counters.heldForBudget, 'counter');
  byCause('mesh_dropped_total', 'Mesh packets dropped, by cause (noRoute, hopLimit, unacknowledged)', (s) => s.counters.dropped);
  byCause('mesh_rejected_total', 'Mesh packets refused, by cause (mac, replay, malformed)', (s) => s.counters.rejected);
  perLink('mesh_link_tx_frames_total', 'Frames sent, by link', (l) => l.txFrames);
  perLink('mesh_link_rx_frames_total', 'Frames received, by link', (l) => l.rxFrames);
  perLink('mesh_link_tx_bytes_total', 'Bytes sent, by link', (l) => l.txBytes);
  perLink('mesh_link_rx_bytes_total', 'Bytes received, by link', (l) => l.rxBytes);
  perLink('mesh_link_airtime_seconds_total', 'Time on air this box has used, by link (0 on wired links)', (l) => l.airtimeMs / 1000);
  perLink('mesh_link_budget_seconds', 'Airtime the duty cycle still allows now, by radio link', (l) => (typeof l.budgetLeftMs === 'number' ? l.budgetLeftMs / 1000 : undefined), 'gauge');
  sampledCounter(registry, { name: `${METRICS_PREFIX}mesh_link_errors_total`, help: 'Radio link errors and refused frames, by link and kind', labelNames: ['link', 'kind'],
    read: () => (mesh()?.links ?? []).flatMap((l) => Object.entries(l.errors ?? {}).map(([kind, v]): readonly [Labels, number] => [{ link: l.name, kind }, v])) });
}
