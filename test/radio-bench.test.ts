// The radio benches in their --quick mode: they run to the end and print their figures
// (the figures themselves are read by people, not asserted, except zero frames over budget).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { haveSocat } from './emulators/pty.ts';
import { ROOT, runCli } from './helpers/cli.ts';

const bench = (file: string) => runCli(['--quick'], { command: ['nice', '-n', '10', process.execPath, join(ROOT, 'bench', file)], timeoutMs: 240_000 });

if (!haveSocat()) {
  console.log('radio-bench: skipped, needs socat and mosquitto');
} else {
  test('bench/radio-line.ts --quick: latency against airtime, and no frame over budget', async () => {
    const result = await bench('radio-line.ts');
    assert.is(result.code, 0, result.stderr);
    const out = result.stdout.toString();
    console.log(out.trim());
    assert.match(out, /median latency\s+\d+ ms/);
    assert.match(out, /frames over budget\s+0 /);
  });

  test('bench/serial-footprint.ts --quick: RSS with two serial links against UDP only', async () => {
    const result = await bench('serial-footprint.ts');
    assert.is(result.code, 0, result.stderr);
    const out = result.stdout.toString();
    console.log(out.trim());
    assert.match(out, /difference\s+-?\d+\.\d MB/);
  });
}

test.run();
