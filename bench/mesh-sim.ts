// The simulator's acceptance figures: 50 and 200 boxes on random topologies over several
// seeds (delivery at steady state, transmissions per delivered reading against managed
// flooding on the same seed), a run with incompressible readings for comparison, and how
// fast 1,000 boxes simulate.
// Usage: npm run bench:sim [-- --seeds 1,2,3 --seconds T]
import { parseArgs } from 'node:util';
import { simulate, type SimResult } from '../mesh/simulation.ts';
import { shippedBoxes } from '../agent/mesh/sim-boxes.ts';

const { values } = parseArgs({ options: { seeds: { type: 'string' }, seconds: { type: 'string' } } });
const seeds = (values.seeds ?? '1,2,3,4,5,6,7,8,9,10').split(',').map(Number);
const seconds = Number(values.seconds ?? 7200);
const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function line(r: SimResult, label = ''): string {
  const saving = r.baseline.tx_per_delivered / r.tx_per_delivered;
  const k = r.frames_per_delivered;
  return `  ${String(r.nodes).padStart(4)} boxes seed ${String(r.seed).padEnd(3)}${label} delivery ${(r.delivery_ratio * 100).toFixed(2).padStart(6)} % (flooding ${(r.baseline.delivery_ratio * 100).toFixed(1)} %)` +
    `  tx/delivered ${r.tx_per_delivered.toFixed(2).padStart(6)} = data ${k.data} + ack ${k.ack} + control ${k.control} (flooding ${r.baseline.tx_per_delivered})  ${saving.toFixed(2)}x` +
    `  ctl ${r.control_bytes_per_node_s} B/box/s  p50 ${r.latency_ms_p50} ms p99 ${r.latency_ms_p99} ms`;
}

for (const nodes of [50, 200]) {
  console.log(`${nodes} boxes, random topology, ${seconds} s, signed readings (about 285 bytes) every 300 s:`);
  const runs = seeds.map((seed) => simulate({ nodes, topology: 'random', seed, seconds, boxes: shippedBoxes({ seed, intervalS: 300 }) }));
  for (const r of runs) console.log(line(r));
  const savings = runs.map((r) => r.baseline.tx_per_delivered / r.tx_per_delivered);
  const delivered = runs.filter((r) => r.delivery_ratio >= 0.99).length;
  const both = runs.filter((r, i) => r.delivery_ratio >= 0.99 && savings[i]! >= 3 && r.delivery_ratio >= r.baseline.delivery_ratio).length;
  console.log(`  median flooding/mesh ${median(savings).toFixed(2)}x; delivery >= 99 % in ${delivered}/${runs.length} seeds; both goals in ${both}/${runs.length} seeds; ` +
    `seed ${seeds[0]}: ${verdict(runs[0]!.delivery_ratio >= 0.99 && savings[0]! >= 3)}`);
}
const raw = simulate({ nodes: 50, topology: 'random', seed: seeds[0]!, seconds, boxes: shippedBoxes({ seed: seeds[0]!, intervalS: 300, incompressible: true }) });
console.log('signed readings of random numbers (incompressible, about the same size), for comparison:');
console.log(line(raw, ' random'));
const big = simulate({ nodes: 1000, topology: 'random', seed: seeds[0]!, seconds: 1200, boxes: shippedBoxes({ seed: seeds[0]!, intervalS: 300 }) });
console.log(`1000 boxes, random: ${big.seconds} s simulated twice (mesh and flooding) in ${big.wall_s} s: ${big.speedup}x real time (goal >= 10x): ${verdict(big.speedup >= 10)}`);
