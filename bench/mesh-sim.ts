// The simulator's acceptance figures in one run: 50 and 200 boxes on a random
// topology (delivery at steady state, transmissions per delivered reading against
// managed flooding on the same seed), and how fast 1,000 boxes simulate.
// Usage: npm run bench:sim [-- --seed S --seconds T]
import { parseArgs } from 'node:util';
import { simulate, type SimResult } from '../mesh/simulation.ts';

const { values } = parseArgs({ options: { seed: { type: 'string' }, seconds: { type: 'string' } } });
const seed = Number(values.seed ?? 1);
const seconds = Number(values.seconds ?? 3600);
const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');

function report(r: SimResult): void {
  const saving = r.baseline.tx_per_delivered / r.tx_per_delivered;
  console.log(`${r.nodes} boxes, random, seed ${r.seed}, ${r.seconds} s in ${r.wall_s} s (${r.speedup}x real time), ${r.uplinks} uplinks, ${r.reachable} reachable`);
  console.log(`  delivery     mesh ${(r.delivery_ratio * 100).toFixed(2)} %   flooding ${(r.baseline.delivery_ratio * 100).toFixed(2)} %   goal >= 99 %: ${verdict(r.delivery_ratio >= 0.99)}`);
  console.log(`  tx/delivered mesh ${r.tx_per_delivered}   flooding ${r.baseline.tx_per_delivered}   flooding/mesh ${saving.toFixed(2)}x   goal >= 3x at equal or better delivery: ${verdict(saving >= 3 && r.delivery_ratio >= r.baseline.delivery_ratio)}`);
  console.log(`  control ${r.control_bytes_per_node_s} B/box/s, airtime ${(r.airtime_share_per_node * 100).toFixed(2)} % per box, converged ${r.converged_s} s, latency p50 ${r.latency_ms_p50} ms p99 ${r.latency_ms_p99} ms`);
}

for (const nodes of [50, 200]) report(simulate({ nodes, topology: 'random', seed, seconds }));
const big = simulate({ nodes: 1000, topology: 'random', seed, seconds: 1200 });
console.log(`1000 boxes, random: ${big.seconds} s simulated twice (mesh and flooding) in ${big.wall_s} s: ${big.speedup}x real time (goal >= 10x): ${verdict(big.speedup >= 10)}`);
