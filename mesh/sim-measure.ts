// What the simulator measures: readings made and arrived (the Ledger), the busiest
// radio's peak rolling hour, frame and counter snapshots of the mesh, and rounding for
// the result. simulation.ts places and runs the boxes; this file only counts.
import type { SimMedium, SimLink } from '../drivers/sim/medium.ts';
import type { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import type { MeshNode } from './node.ts';
import type { SimBox, SimResult } from './simulation.ts';

export function peakHourShare(clock: VirtualClock, links: SimLink[]): () => number | null {
  if (!links[0]?.duty) return () => null;
  let peak = 0;
  const sample = () => {
    for (const link of links) peak = Math.max(peak, link.duty!.usedMs());
    clock.setTimeout(sample, 60_000);
  };
  clock.setTimeout(sample, 60_000);
  return () => round(peak / 3_600_000, 5);
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Readings made in the measured window, with the time each reached the gateway. */
export class Ledger {
  readonly made = new Map<string, number>();
  readonly arrived = new Map<string, number>();
  private readonly from: number;
  private readonly to: number;
  constructor(from: number, to: number) {
    this.from = from;
    this.to = to;
  }
  make(id: string, at: number): void {
    if (at >= this.from && at < this.to) this.made.set(id, at);
  }
  arrive(id: string, at: number): void {
    if (this.made.has(id) && !this.arrived.has(id)) this.arrived.set(id, at - this.made.get(id)!);
  }
  figures(): { ratio: number; delivered: number; p50: number; p99: number } {
    const latencies = [...this.arrived.values()].sort((a, b) => a - b);
    return { ratio: this.made.size ? this.arrived.size / this.made.size : 1, delivered: this.arrived.size, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  }
}

export function snapshot(nodes: MeshNode[], medium: SimMedium) {
  return {
    frames: medium.totals.frames,
    airtimeMs: medium.totals.airtimeMs,
    controlBytes: nodes.reduce((n, node) => n + node.counters.controlBytes, 0),
    control: nodes.reduce((n, node) => n + node.counters.controlFrames, 0),
    data: nodes.reduce((n, node) => n + node.counters.dataFrames, 0),
    ack: nodes.reduce((n, node) => n + node.counters.ackFrames, 0),
  };
}

export function meshTotals(nodes: MeshNode[]): SimResult['mesh_totals'] {
  const dropped = { noRoute: 0, hopLimit: 0, unacknowledged: 0 };
  const notices = { sent: 0, resent: 0 };
  const tlvs: Record<string, number> = {};
  for (const node of nodes) {
    for (const k of ['noRoute', 'hopLimit', 'unacknowledged'] as const) dropped[k] += node.counters.dropped[k];
    notices.sent += node.counters.dropNotices;
    notices.resent += node.counters.resentOnNotice;
    for (const [t, n] of Object.entries(node.status().controlTlvs)) tlvs[t] = (tlvs[t] ?? 0) + n;
  }
  return { dropped, drop_notices: notices, control_tlvs: tlvs };
}

export function boxTotals(boxes: SimBox[]): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const box of boxes) for (const [k, n] of Object.entries(box.counters?.() ?? {})) {
    totals[k] = k.startsWith('max_') ? Math.max(totals[k] ?? 0, n) : (totals[k] ?? 0) + n;
  }
  return totals;
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
