// How much of a radio's duty-cycle allowance data may use: all but a twentieth, which
// stays for hellos, updates and acks (docs/mesh.md section 6, "Duty cycle").
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Link } from '../drivers/link.ts';
import { DataBudget } from '../mesh/airtime-budget.ts';

/** A radio whose remaining budget the test sets; every frame takes 100 ms. */
function radio(budgetMs: () => number): Link {
  return { airtimeMs: () => 100, budgetMs } as unknown as Link;
}

test('data may spend the allowance down to a twentieth; below that only control goes', () => {
  let budget = 360_000; // a fresh ledger at 10 %: the whole allowance
  const data = new DataBudget([radio(() => budget)]);
  assert.ok(data.allows(0, 100), 'a fresh ledger');
  budget = 36_000; // a tenth left: a choke point near the end of its hour
  assert.ok(data.allows(0, 100), 'a tenth of the allowance left is still the data\'s to use');
  budget = 18_050; // what is left after this frame would dip below a twentieth
  assert.not.ok(data.allows(0, 100), 'the last twentieth is the control traffic\'s');
  budget = 10_000;
  assert.not.ok(data.allows(0, 100));
});

test('a link with no duty cycle is never gated', () => {
  const data = new DataBudget([radio(() => Infinity)]);
  assert.ok(data.allows(0, 100));
});

test.run();
