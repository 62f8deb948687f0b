// What the status page shows, gathered from what the agent already keeps: the box
// (identity, owner, time, disk), the sensors' health and last values, the journal's
// queue, the uplink and the mesh service's status (`iop-agent mesh --json`). Public facts
// only: no key and no secret is ever read here.
import { statfsSync } from 'node:fs';
import type { Box } from '../box.ts';
import { meshView, type LastValues } from '../console/box-facts.ts';
import type { MeshService } from '../mesh/service.ts';
import { OwnerStore } from '../pairing/owner-store.ts';
import { sensorStatus } from '../sensor-status.ts';
import { VERSION } from '../version.ts';
import { findProblems, type Problem } from './problems.ts';
import type { UplinkView, UplinkWatch } from './uplink-watch.ts';

export interface DiskView { usedBytes: number; totalBytes: number; percent: number }

export interface StatusState {
  box: { device: string; owner: string | null; version: string; startedAtMs: number; time: { quality: string; jumps: number }; disk: DiskView | null };
  sensors: { name: string; kind: string; ok: boolean; failures: number; error?: string; values: { name: string; value: number | string | boolean; unit?: string; atMs: number }[] }[];
  queue: { waiting: number; oldestStoredMs: number | null; dropped: number; head: number | null; lastReceiptSeq: number | null; lastReceiptAtMs: number | null };
  /** viaMesh: the neighbour readings go through; downSinceMs: since when there is no uplink either way (null: there is one) */
  uplink: UplinkView & { viaMesh: string | null; downSinceMs: number | null };
  mesh: MeshState | null;
  problems: Problem[];
}

export interface MeshState {
  node: string;
  uplinkVia: string | null;
  neighbours: { node: string; link: string; cost: number }[];
  routes: { dest: string; via: string | null; total: number; uplink: boolean; selected: boolean }[];
  links: { name: string; txFrames: number; rxFrames: number; txBytes: number; rxBytes: number; airtimeLastHourMs: number | null; allowanceMs: number | null; budgetLeftMs: number | null }[];
  counters: { forwarded: number; delivered: number; dropped: number; rejected: number; heldForBudget: number };
}

export interface StateSources {
  box: Box;
  values: LastValues;
  uplink: UplinkWatch;
  mesh: () => MeshService | undefined;
  stateDir: string;
  startedAtMs: number;
  noUplinkAlertS: number;
}

const DISK_EVERY_MS = 30_000;
const OWNER_EVERY_MS = 10_000;

function diskOf(stateDir: string): DiskView | null {
  try {
    const s = statfsSync(stateDir);
    // As df counts: blocks reserved for root are neither used nor available.
    const used = (s.blocks - s.bfree) * s.bsize;
    const total = used + s.bavail * s.bsize;
    return { usedBytes: used, totalBytes: total, percent: total > 0 ? Math.round((used / total) * 1000) / 10 : 0 };
  } catch {
    return null;
  }
}

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

export function meshState(status: Record<string, unknown>): MeshState {
  const s = status as {
    node: string; routes: MeshState['routes'];
    links: ({ name: string } & Record<string, unknown>)[];
    counters: { forwarded: number; delivered: number; heldForBudget: number; dropped: Record<string, number>; rejected: Record<string, number> };
  };
  const view = meshView(status);
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  return {
    node: view.node,
    uplinkVia: view.uplinkVia,
    neighbours: view.neighbours,
    routes: s.routes.map((r) => ({ dest: r.dest, via: r.via, total: r.total, uplink: Boolean(r.uplink), selected: r.selected })),
    links: s.links.map((l) => ({
      name: l.name,
      txFrames: num(l.txFrames) ?? 0, rxFrames: num(l.rxFrames) ?? 0, txBytes: num(l.txBytes) ?? 0, rxBytes: num(l.rxBytes) ?? 0,
      airtimeLastHourMs: num(l.airtimeLastHourMs), allowanceMs: num(l.allowanceMs), budgetLeftMs: num(l.budgetLeftMs),
    })),
    counters: {
      forwarded: s.counters.forwarded, delivered: s.counters.delivered, heldForBudget: s.counters.heldForBudget,
      dropped: sum(s.counters.dropped), rejected: sum(s.counters.rejected),
    },
  };
}

/** Gathers the state; keeps what changes slowly (disk, owner) and what it observes over time (receipts, uplink). */
export class StateGatherer {
  private readonly sources: StateSources;
  private disk: { view: DiskView | null; atMs: number } | undefined;
  private owner: { value: string | null; atMs: number } | undefined;
  private lastAcked: number | undefined;
  private lastReceiptAtMs: number | null = null;
  /** The agent starts without an uplink. */
  private downSinceMs: number | null;

  constructor(sources: StateSources) {
    this.sources = sources;
    this.downSinceMs = sources.startedAtMs;
  }

  /**
   * Whether there is an uplink, MQTT or a mesh route to one: called on every tick, page
   * open or not, so that "no uplink for 10 minutes" counts from when it went.
   */
  watchUplink(nowMs = Date.now()): void {
    const up = this.sources.uplink.connected || this.sources.mesh()?.node.bestUplink() !== undefined;
    if (up) this.downSinceMs = null;
    else this.downSinceMs ??= nowMs;
  }

  gather(nowMs = Date.now()): StatusState {
    const { box, values } = this.sources;
    const stats = box.journal.stats();
    if (this.lastAcked !== undefined && stats.acked !== this.lastAcked) this.lastReceiptAtMs = nowMs;
    this.lastAcked = stats.acked;
    const meshService = this.sources.mesh();
    const rawMesh = meshService?.status() as Record<string, unknown> | undefined;
    const mesh = rawMesh ? meshState(rawMesh) : null;
    const uplinkView = this.sources.uplink.view();
    const viaMesh = uplinkView.connected ? null : (rawMesh?.via as string | null | undefined) ?? mesh?.uplinkVia ?? null;
    this.watchUplink(nowMs);
    const { sensors, time } = sensorStatus(box);
    const state: Omit<StatusState, 'problems'> = {
      box: {
        device: box.identity.id, owner: this.ownerAt(nowMs), version: VERSION, startedAtMs: this.sources.startedAtMs,
        time: { quality: time.quality, jumps: time.jumps }, disk: this.diskAt(nowMs),
      },
      sensors: sensors.map((s) => ({
        name: s.name, kind: s.kind, ok: s.ok, failures: s.failures, ...(!s.ok && s.lastError ? { error: s.lastError } : {}),
        values: [...values.byName].filter(([n]) => n === s.name || n.startsWith(`${s.name}/`))
          .map(([name, v]) => ({ name, value: v.value, ...(v.unit ? { unit: v.unit } : {}), atMs: Math.round(v.timeS * 1000) })),
      })),
      queue: {
        waiting: stats.stored, oldestStoredMs: box.journal.oldestStoredAtMs() ?? null, dropped: stats.dropped, head: stats.head ?? null,
        lastReceiptSeq: stats.acked >= 0 ? stats.acked : null, lastReceiptAtMs: this.lastReceiptAtMs,
      },
      uplink: { ...uplinkView, viaMesh, downSinceMs: this.downSinceMs },
      mesh,
    };
    return { ...state, problems: findProblems(state, { nowMs, noUplinkAlertS: this.sources.noUplinkAlertS }) };
  }

  private diskAt(nowMs: number): DiskView | null {
    if (!this.disk || nowMs - this.disk.atMs >= DISK_EVERY_MS) this.disk = { view: diskOf(this.sources.stateDir), atMs: nowMs };
    return this.disk.view;
  }

  private ownerAt(nowMs: number): string | null {
    if (!this.owner || nowMs - this.owner.atMs >= OWNER_EVERY_MS) {
      let value: string | null = null;
      try {
        value = new OwnerStore(this.sources.stateDir).current?.owner ?? null;
      } catch {
        // an unreadable owner file is the console's to report; the page shows no owner
      }
      this.owner = { value, atMs: nowMs };
    }
    return this.owner.value;
  }
}
