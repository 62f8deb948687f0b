import { IopError } from '../errors.ts';
import type { Command } from '../command.ts';
import { simulate, type SimFigures, type Topology } from '../../mesh/simulation.ts';
import { shippedBoxes } from '../mesh/sim-boxes.ts';
import { contributionSim, type ContributionFigures } from '../contribution/sim-contribution.ts';

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

function contributionLine(c: ContributionFigures): string {
  const cheaters = c.cheater_performance_mean === null ? 'no cheaters' : `cheaters ${c.cheater_performance_mean.toFixed(3)} (boxes ${c.cheaters.join(', ')})`;
  const refused = Object.entries(c.refused).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  return `contribution (one epoch of ${c.epoch_s} s, a beacon every ${c.beacon_period_s} s): ${c.beacons} beacons, ${c.witnesses_valid} valid witnesses, ` +
    `${c.witnesses_refused} refused (${refused}); ${c.relay_unmatched} relay claims unmatched, ${c.outliers_flagged} job values flagged\n` +
    `performance mean: honest ${c.honest_performance_mean.toFixed(3)}, ${cheaters}\n` +
    `beacons + witnesses: at most ${(c.max_budget_share * 100).toFixed(2)} % of a box's airtime budget at 6 h beacon periods (goal <= 2 %) ${c.max_budget_share <= 0.02 ? 'MET' : 'NOT MET'}; ` +
    `${(c.max_budget_share_in_run * 100).toFixed(2)} % in the run's compressed periods`;
}

export const simCommand: Command = {
  name: 'sim',
  summary: 'simulate a mesh of N boxes on a LoRa channel, against managed flooding',
  usage: 'iop-agent sim --nodes N --topology line|ring|grid|random [--seed S] [--seconds T] [--contribution] [--cheaters N] [--json]',
  help: `      --nodes N         boxes (2 to 5000)
      --topology T      line, ring, grid or random (random: about 1 uplink box per 25)
      --seed S          repeatable runs (default 1)
      --seconds T       simulated time, in virtual seconds (default 7200); the first third is warm-up
      --interval S      seconds between a box's readings (default 300)
      --contribution    boxes also beacon, witness and attest relays; the run is scored as one
                        epoch (docs/rewards.md) and the JSON gains "contribution"
      --cheaters N      with --contribution (implied): N boxes witness their own beacons,
                        claim relays they did not carry and invent their job values
      --json            one JSON object
Runs the agent's own router, forwarder and relay bridge in accelerated virtual time,
with real signed readings and gateway receipts, on EU868 869.525 MHz with its 10 % duty
cycle enforced; the same seed is run again with managed flooding as Meshtastic does it
(hop limit 3, SNR-weighted rebroadcast delay), readings as they are and compressed, as
the baseline.`,
  options: {
    nodes: { type: 'string' }, topology: { type: 'string' }, seed: { type: 'string' }, seconds: { type: 'string' }, interval: { type: 'string' }, json: { type: 'boolean' },
    contribution: { type: 'boolean' }, cheaters: { type: 'string' },
  },
  async run(context) {
    const v = context.values as Record<string, string | boolean | undefined>;
    if (v.nodes === undefined || v.topology === undefined) throw new IopError('USAGE', 'sim needs --nodes and --topology');
    const topology = v.topology as Topology;
    if (!TOPOLOGIES.includes(topology)) throw new IopError('USAGE', `--topology expects one of ${TOPOLOGIES.join(', ')}, got '${String(v.topology)}'`);
    const nodes = positiveInt(v.nodes as string, 'nodes', 0, 5000);
    if (nodes < 2) throw new IopError('USAGE', '--nodes expects at least 2');
    const seed = positiveInt(v.seed as string | undefined, 'seed', 1, 2 ** 31);
    const readingIntervalS = positiveInt(v.interval as string | undefined, 'interval', 300, 86_400);
    const seconds = positiveInt(v.seconds as string | undefined, 'seconds', 7200, 30 * 86_400);
    const cheaters = v.cheaters === undefined ? 0 : v.cheaters === '0' ? 0 : positiveInt(v.cheaters as string, 'cheaters', 0, nodes);
    const contribution = v.contribution || v.cheaters !== undefined ? contributionSim({ nodes, topology, seed, seconds, intervalS: readingIntervalS, cheaters }) : undefined;
    const simulated = simulate({ nodes, topology, seed, readingIntervalS, seconds, boxes: contribution?.boxes ?? shippedBoxes({ seed, intervalS: readingIntervalS }) });
    const result = contribution ? { ...simulated, contribution: contribution.figures() } : simulated;
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
      ...('contribution' in result ? [contributionLine(result.contribution)] : []),
    ].join('\n') + '\n');
    return 0;
  },
};
