import { IopError } from '../errors.ts';
import type { Command } from '../command.ts';
import { simulate, type SimFigures, type Topology } from '../../mesh/simulation.ts';
import { signedTraffic } from '../mesh/sim-traffic.ts';

const TOPOLOGIES: Topology[] = ['line', 'ring', 'grid', 'random'];

function positiveInt(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new IopError('USAGE', `--${name} expects a whole number from 1 to ${max}, got '${value}'`);
  return n;
}

const row = (name: string, f: SimFigures) =>
  `${name.padEnd(18)} ${String(f.converged_s ?? 'never').padStart(9)} ${(f.delivery_ratio * 100).toFixed(1).padStart(8)}% ${f.tx_per_delivered.toFixed(1).padStart(10)} ` +
  `${(f.control_bytes_per_node_s === null ? 'n/a' : f.control_bytes_per_node_s.toFixed(2)).padStart(12)} ${(f.airtime_share_per_node * 100).toFixed(2).padStart(9)}% ` +
  `${(f.airtime_share_max * 100).toFixed(2).padStart(9)}% ${String(f.latency_ms_p50).padStart(9)} ${String(f.latency_ms_p99).padStart(9)}`;

/** The mesh's airtime per box: how it spreads, and the busiest hour of the busiest box against the duty-cycle budget. */
function airtimeLine(shares: number[], peakHour: number | null, budget: number | null): string {
  const sorted = [...shares].sort((a, b) => a - b);
  const at = (p: number) => `${((sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0) * 100).toFixed(2)} %`;
  const worst = sorted[sorted.length - 1] ?? 0;
  const against = budget === null || peakHour === null ? 'no duty-cycle limit'
    : `its busiest hour ${(peakHour * 100).toFixed(2)} %, ${((peakHour / budget) * 100).toFixed(0)} % of the ${(budget * 100).toFixed(0)} % budget`;
  return `mesh airtime per box over the window: median ${at(0.5)}, p90 ${at(0.9)}, busiest ${(worst * 100).toFixed(2)} % (box ${shares.indexOf(worst)}); busiest box in ${against}`;
}

export const simCommand: Command = {
  name: 'sim',
  summary: 'simulate a mesh of N boxes on a LoRa channel, against managed flooding',
  usage: 'iop-agent sim --nodes N --topology line|ring|grid|random [--seed S] [--seconds T] [--json]',
  help: `      --nodes N         boxes (2 to 5000)
      --topology T      line, ring, grid or random (random: about 1 uplink box per 25)
      --seed S          repeatable runs (default 1)
      --seconds T       simulated time, in virtual seconds (default 7200); the first third is warm-up
      --interval S      seconds between a box's readings (default 300)
      --json            one JSON object
Runs in accelerated virtual time with real signed readings and gateway receipts, on
EU868 869.525 MHz with its 10 % duty cycle enforced; the same seed is run again with
managed flooding as Meshtastic does it (hop limit 3, SNR-weighted rebroadcast delay),
readings as they are and compressed, as the baseline.`,
  options: { nodes: { type: 'string' }, topology: { type: 'string' }, seed: { type: 'string' }, seconds: { type: 'string' }, interval: { type: 'string' }, json: { type: 'boolean' } },
  async run(context) {
    const v = context.values as Record<string, string | boolean | undefined>;
    if (v.nodes === undefined || v.topology === undefined) throw new IopError('USAGE', 'sim needs --nodes and --topology');
    const topology = v.topology as Topology;
    if (!TOPOLOGIES.includes(topology)) throw new IopError('USAGE', `--topology expects one of ${TOPOLOGIES.join(', ')}, got '${String(v.topology)}'`);
    const nodes = positiveInt(v.nodes as string, 'nodes', 0, 5000);
    if (nodes < 2) throw new IopError('USAGE', '--nodes expects at least 2');
    const seed = positiveInt(v.seed as string | undefined, 'seed', 1, 2 ** 31);
    const readingIntervalS = positiveInt(v.interval as string | undefined, 'interval', 300, 86_400);
    const result = simulate({
      nodes, topology, seed, readingIntervalS,
      seconds: positiveInt(v.seconds as string | undefined, 'seconds', 7200, 30 * 86_400),
      traffic: signedTraffic(seed, readingIntervalS),
    });
    if (v.json) {
      context.stdout.write(`${JSON.stringify(result)}\n`);
      return 0;
    }
    context.stdout.write([
      `${result.nodes} boxes, ${result.topology}, seed ${result.seed}, ${result.seconds} s simulated in ${result.wall_s} s (${result.speedup}x real time); ` +
        `${result.uplinks} uplink boxes, ${result.reachable} boxes with a radio path to one, ${result.generated} readings`,
      `${''.padEnd(18)} ${'converged'.padStart(9)} ${'delivered'.padStart(9)} ${'tx/reading'.padStart(10)} ${'ctl B/box/s'.padStart(12)} ${'airtime'.padStart(10)} ${'busiest'.padStart(10)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)}`,
      row('iop-agent mesh', result),
      row('managed flooding', result.baseline),
      row('  compressed', result.baseline_compressed),
      airtimeLine(result.airtime_share_by_box, result.airtime_peak_hour_share, result.airtime_budget_share),
    ].join('\n') + '\n');
    return 0;
  },
};
