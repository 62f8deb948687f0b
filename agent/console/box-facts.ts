// Facts about the running box that the console and the status page both show: the last
// value of each reading and the mesh as a view. Apart from agent-view.ts, whose console
// settings load the configuration schema: the status page must not load it a second time.
import type { SenmlPack } from '../codec/senml.ts';
import type { MeshView } from './commands.ts';

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
