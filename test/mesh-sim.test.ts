// The simulator: routing against managed flooding on the same seeds, and the CLI.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli } from './helpers/cli.ts';
import { simulate } from '../mesh/simulation.ts';
import { shippedBoxes } from '../agent/mesh/sim-boxes.ts';

// The goals (delivery >= 99 % on every seed, 3x fewer transmissions than flooding
// plain readings, 2.5x fewer than flooding compressed ones) are measured by
// bench/mesh-sim.ts. The simulator runs the shipped forwarder and relay bridge, which do
// not meet them yet (receipt timeouts and resends of the forwarder, issue 8): these tests
// hold what the shipped classes do now and must keep, on EU868 869.525 MHz with the 10 %
// duty cycle enforced.
for (const [nodes, seconds] of [[50, 3600], [200, 1800]] as const) {
  test(`${nodes} boxes, random topology, signed readings: converged, more delivered than flooding, within the duty cycle, little control traffic`, () => {
    const r = simulate({ nodes, topology: 'random', seed: 1, seconds, boxes: shippedBoxes({ seed: 1, intervalS: 300 }) });
    const figures = `mesh ${r.delivery_ratio} delivered, ${r.tx_per_delivered} tx/reading; flooding ${r.baseline.delivery_ratio} delivered, ${r.baseline.tx_per_delivered} tx/reading, compressed ${r.baseline_compressed.tx_per_delivered}`;
    assert.ok(r.delivery_ratio > r.baseline.delivery_ratio, figures);
    // 0.71 (50 boxes) and 0.75 (200) measured at the forwarder's paced resends; 0.24 and 0.59 before
    assert.ok(r.delivery_ratio >= 0.65, figures);
    assert.ok(r.airtime_budget_share === 0.1 && r.airtime_peak_hour_share !== null && r.airtime_peak_hour_share <= 0.1, `busiest hour ${r.airtime_peak_hour_share} of ${r.airtime_budget_share}`);
    assert.is(r.baseline.converged_s, null);
    assert.is(r.baseline.control_bytes_per_node_s, null);
    // Every box has a route to an uplink box: 50 boxes in about 100 s; 200 boxes in 644 s
    // (225 s with no readings: the first minutes' data delays one far box's route on LoRa
    // timers). A guard against losing convergence, not the goal.
    assert.ok(r.converged_s !== null && r.converged_s < 900, `converged after ${r.converged_s} s`);
    assert.ok(r.control_bytes_per_node_s !== null && r.control_bytes_per_node_s < 5, `control ${r.control_bytes_per_node_s} B/box/s`);
  });
}

test('signed readings of random numbers (incompressible) arrive, more of them than by flooding', () => {
  const r = simulate({ nodes: 50, topology: 'random', seed: 1, seconds: 1800, boxes: shippedBoxes({ seed: 1, intervalS: 300, incompressible: true }) });
  assert.ok(r.delivery_ratio > r.baseline.delivery_ratio, `delivery ${r.delivery_ratio} vs flooding ${r.baseline.delivery_ratio}`);
});

test('a line converges hop by hop and delivers end to end; the run repeats exactly for a seed', () => {
  const a = simulate({ nodes: 8, topology: 'line', seed: 5, seconds: 1800, boxes: shippedBoxes({ seed: 5, intervalS: 300 }) });
  const b = simulate({ nodes: 8, topology: 'line', seed: 5, seconds: 1800, boxes: shippedBoxes({ seed: 5, intervalS: 300 }) });
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
  // box_totals: the forwarders' publishes and their causes add up
  const boxes = out.box_totals;
  assert.ok(boxes.published > 0 && boxes.bridge_relayed > 0, JSON.stringify(boxes));
  assert.is(boxes.resent, boxes.resentTimeout + boxes.resentGap);
  assert.is(boxes.publishFailed, boxes.publisher_noUplink + boxes.publisher_dropped);
  const bad = await runCli(['sim', '--nodes', '12', '--topology', 'star']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--topology expects one of line, ring, grid, random, got 'star'/);
  const human = await runCli(['sim', '--nodes', '6', '--topology', 'ring', '--seconds', '600']);
  assert.match(human.stdout.toString(), /managed flooding/);
  assert.match(human.stdout.toString(), /busiest box in its busiest hour [0-9.]+ %, \d+ % of the 10 % budget/);
});

test.run();
