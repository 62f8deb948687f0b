// The simulator's acceptance figures: 50 and 200 boxes on random topologies over ten
// seeds (delivery at steady state, transmissions per delivered reading against managed
// flooding on the same seed, latency), summarised as the median and the worst seed and
// how many seeds meet each goal; a run with incompressible readings for comparison; and
// how fast 1,000 boxes simulate.
//
// It prints whatever figures the simulator reports: a field it lacks or reports as null
// shows as '-', and every flooding baseline it reports (with and without compression)
// gets its own ratio.
// Usage: npm run bench:sim [-- --quick] [--seeds 1,2,3] [--nodes 50,200] [--seconds T] [--interval S] [--perturb K]
//   --perturb K: the mesh runs consume K random values before their boxes start (default 0):
//     the same topologies with other timings, to tell a change from one run's noise
//   --quick: 10 boxes, two seeds, half an hour of virtual time, 50 boxes for the speed (for CI)
import { parseArgs } from 'node:util';
import { simulate, type SimResult } from '../mesh/simulation.ts';
import { shippedBoxes } from '../agent/mesh/sim-boxes.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' }, seeds: { type: 'string' }, nodes: { type: 'string' }, seconds: { type: 'string' }, interval: { type: 'string' }, perturb: { type: 'string' },
  },
});
const QUICK = values.quick === true;
const list = (s: string) => s.split(',').map(Number);
const seeds = list(values.seeds ?? (QUICK ? '1,2' : '1,2,3,4,5,6,7,8,9,10'));
const sizes = list(values.nodes ?? (QUICK ? '10' : '50,200'));
const seconds = Number(values.seconds ?? (QUICK ? 1800 : 7200));
const intervalS = Number(values.interval ?? 300);
const perturb = Number(values.perturb ?? 0);
const big = QUICK ? { nodes: 50, seconds: 300 } : { nodes: 1000, seconds: 1200 };

const GOALS = { delivery: 0.99, equalCompression: 2.5, withCompression: 3, p99Ms: 120_000, speedup: 10 };

/** Figures of one run, mesh or baseline; any of them may be missing or null. */
type Figures = Partial<Record<string, unknown>>;

const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const fixed = (x: number | null, digits: number, pad = 0) => (x === null ? '-' : x.toFixed(digits)).padStart(pad);
const percent = (x: unknown, pad = 0) => fixed(num(x) === null ? null : num(x)! * 100, 2, pad);
const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Baseline { label: string; compressed: boolean; figures: Figures }

/** Which flooding baselines a result carries: `baseline`, nested variants of it, or `baseline_*` fields. */
function baselines(r: SimResult): Baseline[] {
  const out: Baseline[] = [];
  const compressedByName = (name: string) => /compress/i.test(name) && !/(un|no|non|without|plain|raw)[-_ ]?compress/i.test(name);
  const add = (label: string, figures: unknown) => {
    if (!figures || typeof figures !== 'object') return;
    const f = figures as Figures;
    if ('tx_per_delivered' in f || 'delivery_ratio' in f) {
      const flag = typeof f.compressed === 'boolean' ? f.compressed : typeof f.compression === 'boolean' ? f.compression : compressedByName(label);
      out.push({ label, compressed: flag, figures: f });
      return;
    }
    for (const [key, nested] of Object.entries(f)) add(`${label} ${key.replace(/_/g, ' ')}`, nested);
  };
  for (const [key, value] of Object.entries(r as unknown as Figures)) {
    if (key.startsWith('baseline')) add(`flooding${key.slice('baseline'.length).replace(/_/g, ' ')}`, value);
  }
  return out;
}

/** The mesh's transmissions per delivered reading against a baseline's: how many times fewer. */
const saving = (r: SimResult, b: Baseline | undefined) => {
  const mesh = num(r.tx_per_delivered);
  const flood = num(b?.figures.tx_per_delivered);
  return mesh === null || flood === null || mesh === 0 ? null : flood / mesh;
};
const plainBaseline = (r: SimResult) => baselines(r).find((b) => !b.compressed);
const compressedBaseline = (r: SimResult) => baselines(r).find((b) => b.compressed);

function line(r: SimResult, label = ''): string {
  const kinds = (r as unknown as Figures).frames_per_delivered as Figures | undefined;
  const split = kinds ? ` = ${Object.entries(kinds).map(([k, v]) => `${k} ${fixed(num(v), 2)}`).join(' + ')}` : '';
  const floods = baselines(r).map((b) => {
    const x = saving(r, b);
    return `${b.label}: delivery ${percent(b.figures.delivery_ratio)} %, tx/delivered ${fixed(num(b.figures.tx_per_delivered), 2)} (${fixed(x, 2)}x)`;
  }).join('; ');
  const f = r as unknown as Figures;
  return `  ${String(f.nodes ?? '?').padStart(4)} boxes seed ${String(f.seed ?? '?').padEnd(3)}${label} delivery ${percent(f.delivery_ratio, 6)} %` +
    `  tx/delivered ${fixed(num(f.tx_per_delivered), 2, 6)}${split}  p50 ${fixed(num(f.latency_ms_p50), 0)} ms p99 ${fixed(num(f.latency_ms_p99), 0)} ms` +
    `  ctl ${fixed(num(f.control_bytes_per_node_s), 2)} B/box/s airtime ${percent(f.airtime_share_per_node)} %` +
    ('airtime_share_max' in f ? ` (busiest box ${percent(f.airtime_share_max)} %${num(f.airtime_budget_share) !== null ? ` of ${percent(f.airtime_budget_share)} % allowed` : ''})` : '') + `  [${floods || 'no flooding baseline reported'}]`;
}

/** Median and worst over the seeds, and in how many seeds each goal is met. */
function summary(runs: SimResult[]): string[] {
  const values = (pick: (r: SimResult) => number | null) => runs.map(pick).filter((x): x is number => x !== null);
  const stat = (name: string, xs: number[], worst: 'min' | 'max', show: (x: number | null) => string) =>
    `${name} median ${show(median(xs))}, worst ${show(xs.length ? Math[worst](...xs) : null)}`;
  const delivery = values((r) => num(r.delivery_ratio));
  const plain = values((r) => saving(r, plainBaseline(r)));
  const equal = values((r) => saving(r, compressedBaseline(r)));
  const p50 = values((r) => num(r.latency_ms_p50));
  const p99 = values((r) => num(r.latency_ms_p99));
  const hasCompressed = runs.some((r) => compressedBaseline(r));
  const meets = {
    delivery: (r: SimResult) => (num(r.delivery_ratio) ?? 0) >= GOALS.delivery,
    withCompression: (r: SimResult) => (saving(r, plainBaseline(r)) ?? 0) >= GOALS.withCompression,
    equalCompression: (r: SimResult) => (saving(r, compressedBaseline(r)) ?? 0) >= GOALS.equalCompression,
    p99: (r: SimResult) => (num(r.latency_ms_p99) ?? Infinity) <= GOALS.p99Ms,
  };
  const count = (ok: (r: SimResult) => boolean) => `${runs.filter(ok).length}/${runs.length}`;
  const all = (r: SimResult) => meets.delivery(r) && meets.withCompression(r) && meets.p99(r) && (!hasCompressed || meets.equalCompression(r));
  return [
    `  ${stat('delivery', delivery, 'min', (x) => `${percent(x)} %`)}; ${stat('flooding/mesh transmissions', plain, 'min', (x) => `${fixed(x, 2)}x`)}` +
      (hasCompressed ? `; ${stat('at equal compression', equal, 'min', (x) => `${fixed(x, 2)}x`)}` : '') +
      `; ${stat('p50', p50, 'max', (x) => `${fixed(x, 0)} ms`)}; ${stat('p99', p99, 'max', (x) => `${fixed(x, 0)} ms`)}`,
    `  seeds meeting: delivery >= ${GOALS.delivery * 100} % ${count(meets.delivery)}; ` +
      `>= ${GOALS.equalCompression}x at equal compression ${hasCompressed ? count(meets.equalCompression) : '- (no compressed flooding reported)'}; ` +
      `>= ${GOALS.withCompression}x with compression ${count(meets.withCompression)}; p99 <= ${GOALS.p99Ms / 1000} s ${count(meets.p99)}; all of them ${count(all)}`,
  ];
}

/**
 * One run on a random topology: signed readings every intervalS (incompressible: of random
 * values, for comparison). The one place that says how the simulator is asked.
 */
function run(nodes: number, seed: number, virtualS: number, incompressible = false): SimResult {
  return simulate({ nodes, topology: 'random', seed, seconds: virtualS, readingIntervalS: intervalS, perturb, boxes: shippedBoxes({ seed, intervalS, incompressible }) });
}

console.log(`random topologies, ${seconds} s virtual (the first third warm-up), signed readings every ${intervalS} s, seeds ${seeds.join(',')}${perturb ? `, perturbed by ${perturb}` : ''}${QUICK ? ' (quick)' : ''}`);
for (const nodes of sizes) {
  console.log(`${nodes} boxes:`);
  const runs: SimResult[] = [];
  for (const seed of seeds) {
    const r = run(nodes, seed, seconds);
    runs.push(r);
    console.log(line(r));
  }
  for (const l of summary(runs)) console.log(l);
}
const raw = run(sizes[0]!, seeds[0]!, seconds, true);
console.log('incompressible readings, for comparison:');
console.log(line(raw, ' random'));
const fast = run(big.nodes, seeds[0]!, big.seconds);
const wall = num(fast.wall_s);
/** the mesh and each baseline are simulated in turn on the same seed */
const speedup = num(fast.speedup) ?? (wall ? ((1 + baselines(fast).length) * big.seconds) / wall : null);
console.log(`${big.nodes} boxes, random: ${big.seconds} s simulated for the mesh and its baselines in ${fixed(wall, 2)} s: ` +
  `ratio ${fixed(speedup, 1)}x real time (goal >= ${GOALS.speedup}x) ${verdict((speedup ?? 0) >= GOALS.speedup)}`);
