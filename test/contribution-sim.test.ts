// Contribution end to end in the simulator: boxes beacon on the simulated radio, witness
// through the mesh, uplink boxes attest relays, and a run scored as one epoch tells the
// cheaters from the honest boxes; beacons and witnesses stay within 2 % of the airtime
// budget. Virtual time, real signatures.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { simulate } from '../mesh/simulation.ts';
import { contributionSim } from '../agent/contribution/sim-contribution.ts';
import { runCli } from './helpers/cli.ts';

test('a 16-box grid with 3 cheaters: cheaters refused and scored low, honest boxes credited, overhead within budget', () => {
  const options = { nodes: 16, topology: 'grid' as const, seed: 3, seconds: 3600, intervalS: 300, cheaters: 3 };
  const sim = contributionSim(options);
  simulate({ ...options, readingIntervalS: options.intervalS, boxes: sim.boxes });
  const c = sim.figures();
  assert.is(c.cheaters.length, 3);
  assert.ok(c.beacons >= 16 * 3, `beacons ${c.beacons}: about four per box`);
  assert.ok(c.witnesses_valid >= c.beacons, `${c.witnesses_valid} valid witnesses for ${c.beacons} beacons: a grid box hears several neighbours`);
  // Each cheater witnesses each of its own beacons: all refused as self.
  assert.ok((c.refused.self ?? 0) >= 3 * 3, JSON.stringify(c.refused));
  // Honest witnesses pass every check; a few name a beacon whose own report had not reached the gateway by the end.
  assert.equal(Object.keys(c.refused).filter((k) => k !== 'self' && k !== 'unknown-beacon'), [], JSON.stringify(c.refused));
  assert.ok((c.refused['unknown-beacon'] ?? 0) <= 0.1 * c.witnesses_valid, JSON.stringify(c));
  assert.ok(c.relay_unmatched >= 3 * 10, `relay claims unmatched: ${c.relay_unmatched}`);
  assert.ok(c.outliers_flagged > 0);
  assert.ok(c.honest_performance_mean > 0.8, `honest ${c.honest_performance_mean}`);
  assert.ok(c.cheater_performance_mean! < c.honest_performance_mean - 0.4, `cheaters ${c.cheater_performance_mean} vs honest ${c.honest_performance_mean}`);
  assert.ok(c.max_budget_share <= 0.02, `beacons + witnesses take ${(c.max_budget_share * 100).toFixed(2)} % of the busiest box's budget`);
  assert.ok(c.max_budget_share > 0);
});

test('iop-agent sim --cheaters N --json gains the contribution figures', async () => {
  const result = await runCli(['sim', '--nodes', '6', '--topology', 'line', '--seconds', '1800', '--cheaters', '1', '--json'], { timeoutMs: 100_000 });
  assert.is(result.code, 0, result.stderr.toString());
  const out = JSON.parse(result.stdout.toString());
  for (const key of ['max_budget_share', 'beacons', 'witnesses_valid', 'witnesses_refused', 'honest_performance_mean', 'cheater_performance_mean']) {
    assert.type(out.contribution[key], 'number', key);
  }
  assert.is(out.contribution.cheaters.length, 1);
  const plain = await runCli(['sim', '--nodes', '4', '--topology', 'line', '--seconds', '600', '--json'], { timeoutMs: 100_000 });
  assert.is(JSON.parse(plain.stdout.toString()).contribution, undefined, 'off unless asked for');
});

test.run();
