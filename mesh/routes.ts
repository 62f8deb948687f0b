// Loop-free distance-vector routes in the manner of Babel (RFC 8966): every source
// numbers its announcements; a node only takes a route that is feasible, i.e. newer
// than, or strictly better than, the best it has itself announced for that source.
// That rules out loops without any global knowledge.
import { INFINITE_METRIC, type NodeId } from './packet.ts';

export interface Route {
  source: NodeId;
  sourceHex: string;
  /** neighbour key the route goes through */
  via: string;
  seqno: number;
  /** metric as the neighbour announced it */
  metric: number;
  uplink: boolean;
  expires: number;
}

export interface Selected extends Route {
  /** metric through this box: announced metric plus the link cost */
  total: number;
}

interface Feasibility { seqno: number; metric: number }

/** a is newer than b in 16-bit sequence arithmetic */
export function seqNewer(a: number, b: number): boolean {
  const d = (a - b) & 0xffff;
  return d !== 0 && d < 0x8000;
}

export class RouteTable {
  /** source -> via -> route */
  private readonly routes = new Map<string, Map<string, Route>>();
  private readonly feasibility = new Map<string, Feasibility>();
  private readonly selected = new Map<string, Selected>();

  /** Stores an announcement (feasible or not: an unfeasible one may become usable later). */
  update(route: Route): void {
    let bySource = this.routes.get(route.sourceHex);
    if (!bySource) this.routes.set(route.sourceHex, (bySource = new Map()));
    bySource.set(route.via, route);
  }

  feasible(sourceHex: string, seqno: number, metric: number): boolean {
    if (metric >= INFINITE_METRIC) return true;
    const fd = this.feasibility.get(sourceHex);
    if (!fd) return true;
    return seqNewer(seqno, fd.seqno) || (seqno === fd.seqno && metric < fd.metric);
  }

  /** We announced `metric` for the source at `seqno`: the feasibility distance can only tighten. */
  announced(sourceHex: string, seqno: number, metric: number): void {
    if (metric >= INFINITE_METRIC) return;
    const fd = this.feasibility.get(sourceHex);
    if (!fd || seqNewer(seqno, fd.seqno) || (seqno === fd.seqno && metric < fd.metric)) this.feasibility.set(sourceHex, { seqno, metric });
  }

  feasibilityOf(sourceHex: string): Feasibility | undefined {
    return this.feasibility.get(sourceHex);
  }

  /**
   * Chooses the best feasible route for every source; returns the sources whose choice
   * changed, those left without a feasible route while unfeasible ones exist (starved),
   * and those whose route is much worse than an unfeasible one (stuck).
   */
  select(now: number, linkCost: (via: string) => number, only?: Iterable<string>): { changed: string[]; renewed: string[]; starved: string[]; stuck: string[] } {
    const changed: string[] = [];
    const renewed: string[] = [];
    const starved: string[] = [];
    const stuck: string[] = [];
    // Only the sources an update touched, when the caller knows them: a big mesh has many.
    const sources = only ? [...only].flatMap((s) => (this.routes.has(s) ? [[s, this.routes.get(s)!] as const] : [])) : [...this.routes];
    for (const [sourceHex, bySource] of sources) {
      let best: Selected | undefined;
      let anyUsable = false;
      let bestUnfeasible = INFINITE_METRIC;
      const previousVia = this.selected.get(sourceHex)?.via;
      let current: Selected | undefined;
      for (const [via, route] of bySource) {
        if (route.expires <= now) {
          bySource.delete(via);
          continue;
        }
        const cost = linkCost(via);
        if (route.metric >= INFINITE_METRIC || cost >= INFINITE_METRIC) continue;
        const total = Math.min(INFINITE_METRIC - 1, route.metric + cost);
        anyUsable = true;
        if (!this.feasible(sourceHex, route.seqno, route.metric)) {
          bestUnfeasible = Math.min(bestUnfeasible, total);
          continue;
        }
        const candidate = { ...route, total };
        if (via === previousVia) current = candidate;
        if (!best || total < best.total) best = candidate;
      }
      // Hysteresis: the route in use stays unless another is clearly better (or newer),
      // so metric noise on lossy links does not flap paths and flood updates.
      if (best && current && best !== current && !seqNewer(best.seqno, current.seqno) && best.total * 5 > current.total * 4) best = current;
      const previous = this.selected.get(sourceHex);
      if (best) this.selected.set(sourceHex, best);
      else this.selected.delete(sourceHex);
      if (!sameChoice(previous, best)) changed.push(sourceHex);
      else if (previous && best && previous.seqno !== best.seqno) renewed.push(sourceHex);
      // Starved: a usable route exists but none is feasible. With no usable route at all, a
      // request would go nowhere; the next update brings one.
      if (!best && anyUsable) starved.push(sourceHex);
      // Stuck: the route in use got much worse than one the feasibility condition forbids
      // (RFC 8966 section 3.8.2.2): a new seqno from the source would free the better one.
      else if (best && bestUnfeasible * 3 < best.total * 2) stuck.push(sourceHex);
      if (bySource.size === 0) this.routes.delete(sourceHex);
    }
    for (const sourceHex of only ?? [...this.selected.keys()]) {
      if (this.selected.has(sourceHex) && !this.routes.has(sourceHex)) {
        this.selected.delete(sourceHex);
        changed.push(sourceHex);
      }
    }
    return { changed, renewed, starved, stuck };
  }

  /**
   * The best feasible route to a source through none of `avoid`: where the selected one
   * would send a frame back where it came from. Feasible routes cannot loop.
   */
  alternative(sourceHex: string, now: number, linkCost: (via: string) => number, avoid: ReadonlySet<string>): Selected | undefined {
    let best: Selected | undefined;
    for (const [via, route] of this.routes.get(sourceHex) ?? []) {
      if (avoid.has(via) || route.expires <= now || route.metric >= INFINITE_METRIC) continue;
      const cost = linkCost(via);
      if (cost >= INFINITE_METRIC || !this.feasible(sourceHex, route.seqno, route.metric)) continue;
      const total = Math.min(INFINITE_METRIC - 1, route.metric + cost);
      if (!best || total < best.total) best = { ...route, total };
    }
    return best;
  }

  selectedRoute(sourceHex: string): Selected | undefined {
    return this.selected.get(sourceHex);
  }

  allSelected(): Selected[] {
    return [...this.selected.values()];
  }

  all(): Route[] {
    return [...this.routes.values()].flatMap((m) => [...m.values()]);
  }

  /** Forgets the routes through a neighbour that went away. */
  dropVia(via: string): void {
    for (const bySource of this.routes.values()) bySource.delete(via);
  }
}

function sameChoice(a: Selected | undefined, b: Selected | undefined): boolean {
  if (!a || !b) return a === b;
  // Small metric drift and a new seqno on the same path are left to the periodic
  // updates (or answer a pending request); a new path or role is news.
  return a.via === b.via && a.uplink === b.uplink && Math.abs(a.total - b.total) * 2 < a.total;
}
