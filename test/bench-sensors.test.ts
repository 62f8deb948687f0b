// The sensor bench's --quick mode runs in CI: it must read the full set (17 records a
// tick) and report its figures. No timing is asserted here; the figures are in bench/.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

test('bench/sensors.ts --quick reads every sensor and reports CPU per tick next to signing', () => {
  const run = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'bench', 'sensors.ts'), '--quick', '--json'], { encoding: 'utf8', timeout: 120_000 });
  assert.is(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assert.is(result.records, 17);
  assert.is(result.sensors, 7);
  for (const key of ['readCpuMsPerTick', 'signCpuMsPerReading', 'readOverSign', 'gpiogetSpawnCpuMs']) assert.type(result[key], 'number', key);
});

test.run();
