// The simulator: routing against managed flooding on the same seeds, and the CLI.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli } from './helpers/cli.ts';
import { simulate } from '../mesh/simulation.ts';
import { signedTraffic } from '../agent/mesh/sim-traffic.ts';

// The mesh on EU868 869.525 MHz with the 10 % duty cycle enforced, against Meshtastic-style
// managed flooding on the same seed. One seed of 50 boxes over 2 virtual hours (measured
// from the end of the first third, past convergence and the hello timers' ramp, to two
// minutes before the end), which runs in seconds. These are regression guards of what the
// mesh achieves there, not the goals over 10 seeds and 200 boxes: those are
// measured and reported by `npm run bench:sim` (docs/mesh.md section 11).
test('50 boxes, random topology, signed readings: 99 % arrive within 2 minutes, 3x fewer transmissions than plain flooding, fewer than compressed flooding', () => {
  const r = simulate({ nodes: 50, topology: 'random', seed: 1, seconds: 7200, traffic: signedTraffic(1, 300) });
  const figures = `mesh ${r.delivery_ratio} delivered, p99 ${r.latency_ms_p99} ms, ${r.tx_per_delivered} tx/reading; flooding ${r.baseline.tx_per_delivered}, compressed ${r.baseline_compressed.tx_per_delivered}; dropped ${JSON.stringify(r.mesh_totals.dropped)} of ${r.generated}`;
  assert.ok(r.delivery_ratio >= 0.99, figures);
  assert.ok(r.delivery_ratio >= r.baseline.delivery_ratio && r.delivery_ratio >= r.baseline_compressed.delivery_ratio, 'at least as good as flooding');
  // Readings arrive on their first journey: a relay that loses one leaves it to the
  // origin's resend, a quarter of an hour later.
  assert.ok(r.latency_ms_p99 <= 120_000, figures);
  assert.ok(r.tx_per_delivered * 3 <= r.baseline.tx_per_delivered, figures);
  assert.ok(r.tx_per_delivered < r.baseline_compressed.tx_per_delivered, figures);
  assert.ok(r.airtime_budget_share === 0.1 && r.airtime_peak_hour_share !== null && r.airtime_peak_hour_share <= 0.1, `busiest hour ${r.airtime_peak_hour_share} of ${r.airtime_budget_share}`);
  assert.is(r.baseline.converged_s, null);
  assert.is(r.baseline.control_bytes_per_node_s, null);
  assert.ok(r.converged_s !== null && r.converged_s < 600, `converged after ${r.converged_s} s`);
  assert.ok(r.control_bytes_per_node_s !== null && r.control_bytes_per_node_s < 5, `control ${r.control_bytes_per_node_s} B/box/s`);
  // Lost hellos and lost acks (collisions) do not set off route churn: few seqno requests.
  assert.ok((r.mesh_totals.control_tlvs.seqreq ?? 0) < r.generated / 2, `seqno requests ${r.mesh_totals.control_tlvs.seqreq} for ${r.generated} readings`);
});

// Random readings do not compress: each takes two frames. 25 boxes, so that the load
// fits the channel round the uplinks; 50 boxes of them every 5 minutes bring the busiest
// relay near its data cap (99.7 % arrive, flooding 35 %, but p99 is 12 minutes), a
// capacity limit that bench:sim reports rather than a test asserts.
test('random (incompressible) readings still arrive, with fewer transmissions than flooding', () => {
  const r = simulate({ nodes: 25, topology: 'random', seed: 1, seconds: 3600 });
  const figures = `delivery ${r.delivery_ratio} (flooding ${r.baseline.delivery_ratio}), ${r.tx_per_delivered} tx/reading vs flooding ${r.baseline.tx_per_delivered}, p99 ${r.latency_ms_p99} ms`;
  assert.ok(r.delivery_ratio >= 0.99, figures);
  assert.ok(r.latency_ms_p99 <= 120_000, figures);
  assert.ok(r.tx_per_delivered * 2 < r.baseline.tx_per_delivered, figures);
});

test('a line converges hop by hop and delivers end to end; the run repeats exactly for a seed', () => {
  const a = simulate({ nodes: 8, topology: 'line', seed: 5, seconds: 1800 });
  const b = simulate({ nodes: 8, topology: 'line', seed: 5, seconds: 1800 });
  assert.ok(a.delivery_ratio >= 0.99, `delivery ${a.delivery_ratio}`);
  const { wall_s: _a, speedup: _sa, ...figuresA } = a;
  const { wall_s: _b, speedup: _sb, ...figuresB } = b;
  assert.equal(figuresA, figuresB);
  // flooding with hop limit 3 (three relays) cannot reach an uplink 5 or more hops away
  assert.ok(a.baseline.delivery_ratio < 0.7, `flooding delivered ${a.baseline.delivery_ratio}`);
});

test('iop-agent sim --json prints the documented fields; bad flags exit 2 naming the flag', async () => {
  const result = await runCli(['sim', '--nodes', '12', '--topology', 'grid', '--seconds', '900', '--json']);
  assert.is(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout.toString());
  for (const key of ['nodes', 'seed', 'converged_s', 'delivery_ratio', 'tx_per_delivered', 'control_bytes_per_node_s', 'airtime_share_per_node', 'airtime_share_max', 'airtime_peak_hour_share', 'latency_ms_p50', 'latency_ms_p99', 'baseline', 'baseline_compressed', 'airtime_budget_share', 'airtime_share_by_box']) {
    assert.ok(key in out, `field ${key}`);
  }
  assert.is(out.nodes, 12);
  assert.is(typeof out.baseline.delivery_ratio, 'number');
  const bad = await runCli(['sim', '--nodes', '12', '--topology', 'star']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--topology expects one of line, ring, grid, random, got 'star'/);
  const human = await runCli(['sim', '--nodes', '6', '--topology', 'ring', '--seconds', '600']);
  assert.match(human.stdout.toString(), /managed flooding/);
  assert.match(human.stdout.toString(), /busiest box in its busiest hour [0-9.]+ %, \d+ % of the 10 % budget/);
});

test.run();
