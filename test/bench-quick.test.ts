// Every bench in its --quick mode, as a child process: it must exit 0 and print its
// comparison lines, so that a bench broken by a change fails CI. The figures of a quick
// run are rough and not asserted (no timed assertions); `npm run bench:*` gives real ones.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runCli } from './helpers/cli.ts';

async function quick(bench: string): Promise<string> {
  const result = await runCli(['--quick'], { command: [process.execPath, join(ROOT, 'bench', bench)], timeoutMs: 100_000 });
  const stdout = result.stdout.toString();
  assert.is(result.code, 0, `bench/${bench} --quick exited ${result.code ?? result.signal}\n${stdout}\n${result.stderr}`);
  return stdout;
}

test('bench:sign --quick prints the per-reading cost against a bare signature', async () => {
  const out = await quick('sign.ts');
  assert.match(out, /one reading: sample \+ SenML \+ COSE sign \+ chain +\d+\.\d µs\/op +\d+ op\/s +\d+\.\d\dx bare signature/);
  assert.match(out, /per reading \/ bare signature: \d+\.\d\dx \(goal <= 1\.30x\) (MET|NOT MET)/);
});

test('bench:drain --quick drains its queue and prints the rate against bare mqtt.js', async () => {
  const out = await quick('drain.ts');
  assert.match(out, /iop-agent uplink drain \(window \d+\) +\d+ readings\/s \(median of 1, queue empty after each\)/);
  assert.match(out, /ratio: \d+\.\d\dx bare mqtt\.js \(goal >= 0\.5x\) (MET|NOT MET)/);
});

test('bench:footprint --quick measures the running agent against a bare node process', async () => {
  const out = await quick('footprint.ts');
  assert.match(out, /iop-agent run \(from source\) +RSS +\d+\.\d MB +CPU +\d+\.\d\d % of a core/);
  assert.match(out, /agent - bare: -?\d+\.\d MB RSS \(goal <= 15 MB\) (MET|NOT MET); CPU \d+\.\d\d % of a core/);
});

test('bench:sim --quick prints every seed, the median and worst seed, and the speed', async () => {
  const out = await quick('mesh-sim.ts');
  assert.match(out, /10 boxes seed 1 +delivery +\d+\.\d\d % +tx\/delivered +\d+\.\d\d .* p99 \d+ ms .*\[flooding: delivery \d+\.\d\d %, tx\/delivered \d+\.\d\d \(\d+\.\d\dx\)/);
  assert.match(out, /10 boxes seed 2 /);
  assert.match(out, /delivery median \d+\.\d\d %, worst \d+\.\d\d %; flooding\/mesh transmissions median \d+\.\d\dx, worst \d+\.\d\dx/);
  assert.match(out, /seeds meeting: delivery >= 99 % \d\/2; .* p99 <= 120 s \d\/2; all of them \d\/2/);
  assert.match(out, /50 boxes, random: 300 s simulated .* ratio \d+\.\dx real time \(goal >= 10x\) (MET|NOT MET)/);
});

test('bench:mesh --quick compares iop-agent with babeld on a 3-box line (or says what the machine lacks)', async () => {
  const out = await quick('mesh-vs-babeld.ts');
  if (/skipped: needs/.test(out)) {
    console.log(`  ${out.trim()}`);
    return;
  }
  assert.match(out, /3-box line\n/);
  assert.match(out, /converged +\d+\.\d\d s +\d+\.\d\d s +ratio \d+\.\d\dx \(after the spawn\)/);
  assert.match(out, /converged once up +\d+\.\d\d s +\d+\.\d\d s +ratio (\d+\.\d\dx|-) \(after every process runs\)/);
  assert.match(out, /control B\/box\/s +\d+\.\d\d +\d+\.\d\d +ratio \d+\.\d\dx/);
  assert.match(out, /6 queued readings acknowledged by gateway receipts \d+\.\d\d s after the start/);
  assert.match(out, /goal \(3-box line\): convergence once up under 4 s at no more than 60 B\/box\/s: (MET|NOT MET)/);
});

test('bench:gateway --quick prints readings per gateway core against bare verification, per store, and the two-gateway scaling', async () => {
  const out = await quick('gateway.ts');
  assert.match(out, /\d+ readings of \d+ boxes, \d+ B each, after a warm-up of \d+ per gateway; bare verifications per core-second \(node:crypto, measured around each run\): \d+(, \d+)*\n/);
  assert.match(out, /SQLite, 1 gateway +\d+ readings\/s wall +\d+ per gateway core-second \(\d+\.\d\dx bare verify\) +cores busy: cpu0 \d+ %.* accepted 2000\/2000/);
  assert.match(out, /goal \(SQLite, 1 gateway\): verified, stored and receipted per core >= 0\.50x bare verify: \d+\.\d\dx (MET|NOT MET)/);
  assert.match(out, /CPU per reading \(µs\): gateways \/ broker \/ database \/ bare verify\nSQLite, 1 gateway +\d+ \/ +\d+ \/ +\d+ \/ +\d+\n/);
  if (/PostgreSQL skipped/.test(out)) return;
  assert.match(out, /PostgreSQL, 2 gateways +\d+ \/ +\d+ \/ +[1-9]\d* \/ +\d+\n/, 'the database\'s CPU is counted');
  const split = /PostgreSQL, 2 gateways +\d+ readings\/s wall .* accepted 2000\/2000 \((\d+) \+ (\d+) with the warm-up's 800\)/.exec(out);
  assert.ok(split, out);
  // Each took the readings of its own devices only (device affinity: 4 + 4 of each 8 boxes).
  assert.equal([Number(split[1]), Number(split[2])], [1400, 1400], 'each reading received by the gateway owning its device only');
  assert.not.match(out, /PostgreSQL, 2 gateways .* duplicates/, 'no reading reached both gateways');
  assert.match(out, /goal \(PostgreSQL, 1 gateway\): verified, stored and receipted per core >= 0\.50x bare verify: \d+\.\d\dx (MET|NOT MET)/);
  assert.match(out, /goal \(PostgreSQL\): 2 gateways >= 1\.5x 1 gateway \(wall\): \d+\.\d\dx (MET|NOT MET)/, out);
});

test('bench:anchor --quick anchors one epoch per size in one transaction and prints the gas', async () => {
  const out = await quick('anchor.ts');
  if (/skipped: needs/.test(out)) {
    console.log(`  ${out.trim()}`);
    return;
  }
  assert.match(out, /^ +1000 readings +1 tx\/epoch +gas\/epoch +\d+ +gas\/reading +\d+\.\d+ +proof +\d+ hashes, proves\(\) \d+ gas$/m);
  assert.match(out, /^ +10000 readings +1 tx\/epoch /m);
  assert.match(out, /goal: one transaction per epoch per gateway whatever the number of readings: MET/);
});

test('bench:metrics --quick prints the cost of a /metrics scrape against a bare GET of the same size', async () => {
  const out = await quick('metrics.ts');
  assert.match(out, /GET \/metrics \(agent figures \+ process metrics\) +\d+\.\d µs\/op +\d+ op\/s +\d+\.\d\dx bare node:http GET/);
  assert.match(out, /a scrape every 15 s: \d+\.\d{4} % of a core \(goal <= 0\.1 %\) (MET|NOT MET)/);
});

test('bench/status-page.ts --quick prints the first load and interactive time with 3 and 20 quantities, the agent CPU of a pushed change and the RSS with the page open', async () => {
  const out = await quick('status-page.ts');
  for (const n of [' 3', '20']) {
    assert.match(out, new RegExp(`first load, ${n} quantities: page \\d+ B, css \\d+ B, js \\d+ B, whole state with an hour of charts \\d+ B \\(\\d+ B uncompressed\\): \\d+\\.\\d KB \\(goal <= 150 KB\\) (MET|NOT MET)`));
    assert.match(out, new RegExp(`pushed change, ${n} quantities: gather, diff, send +\\d+\\.\\d µs/op +\\d+ op/s +\\d+\\.\\d\\dx bare ws\\.send`));
    assert.match(out, new RegExp(`agent CPU per pushed change, ${n} quantities: \\d+ µs \\(goal < 1 ms\\) (MET|NOT MET)`));
    // Without Debian's chromium the browser part says so instead.
    if (!/interactive: skipped: needs Debian's chromium/.test(out)) {
      assert.match(out, new RegExp(`interactive, ${n} quantities: median \\d+ ms, worst \\d+ ms of 3 cold loads \\(goal < 1 s\\) (MET|NOT MET); static page of \\d+ KB from bare node:http: median \\d+ ms, ratio \\d+\\.\\d\\dx`));
    }
  }
  assert.match(out, /page on - off by kind of mapping \(last pair, MB\): executable -?\d+\.\d, malloc -?\d+\.\d, anonymous -?\d+\.\d, other -?\d+\.\d/);
  assert.match(out, /page on - off: -?\d+\.\d MB RSS, median of \d pairs \(.*\) \(goal <= 5 MB\) (MET|NOT MET)/);
});

test('bench:rewards --quick scores an epoch and prints the time against signature verifications', async () => {
  const out = await quick('rewards.ts');
  assert.match(out, /1000 devices, 500 owners: 4000 beacons, \d+ valid witnesses, 57600 relayed readings attested, 10 jobs × 144 slots; mean performance 0\.\d{3}, root 0x[0-9a-f]{16}…/);
  assert.match(out, /scoring one epoch: \d+\.\d\d s +\d+\.\d\dx 1,000 Ed25519 verifications \(\d+\.\d ms\)/);
  assert.match(out, /goal: scoring 10,000 devices for one epoch <= 10 s on one core: quick run of 1000 devices; the goal is for 10,000/);
});

test('every bench (a bench/ file with a Usage line) has a --quick mode, and a test file runs it', () => {
  const tests = readdirSync(join(ROOT, 'test')).filter((f) => f.endsWith('.test.ts')).map((f) => readFileSync(join(ROOT, 'test', f), 'utf8'));
  const benches = readdirSync(join(ROOT, 'bench')).filter((f) => f.endsWith('.ts'))
    .map((file) => ({ file, usage: /^\/\/ Usage: .*$/m.exec(readFileSync(join(ROOT, 'bench', file), 'utf8'))?.[0] }))
    .filter((b) => b.usage !== undefined);
  assert.ok(benches.length >= 5, `benches found: ${benches.map((b) => b.file).join(', ')}`);
  for (const { file, usage } of benches) {
    assert.match(usage!, /--quick/, `bench/${file} documents a --quick mode`);
    const named = new RegExp(`['"/]${file.replace(/[.]/g, '\\.')}['"]`);
    assert.ok(tests.some((t) => named.test(t) && t.includes('--quick')), `a test file runs bench/${file} --quick`);
  }
});

test.run();
