// The simulator's --perturb: the same seed's topology with other timings, so that a change
// is judged over several runs of one seed rather than by the noise of one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runMesh, type SimOptions } from '../mesh/simulation.ts';
import { shippedBoxes } from '../agent/mesh/sim-boxes.ts';

const options = (perturb?: number): SimOptions => ({
  nodes: 12, topology: 'random', seed: 3, seconds: 1800, boxes: shippedBoxes({ seed: 3, intervalS: 300 }), ...(perturb !== undefined ? { perturb } : {}),
});

test('perturb 0 is the seed as it always was; perturb 1 keeps its boxes and uplinks but not its timings', () => {
  const plain = runMesh(options());
  const zero = runMesh(options(0));
  const one = runMesh(options(1));
  assert.equal(zero, plain);
  assert.is(one.uplinks, plain.uplinks);
  assert.is(one.reachable, plain.reachable);
  assert.not.equal(one.shares, plain.shares, 'another random stream moves every box\'s airtime');
});

test.run();
