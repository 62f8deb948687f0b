import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitCborSequence } from '../agent/codec/cbor.ts';
import { jsonLines, runCli, tempDir } from './helpers/cli.ts';

const dir = tempDir();
const state = join(dir.path, 'state');
const sampleFile = join(dir.path, 'five.cbor');
test.after(() => dir.remove());

const COMMANDS = ['run', 'id', 'sample', 'verify', 'export', 'config', 'demo'];

test('--help lists every command; each command has its own --help', async () => {
  const top = await runCli(['--help']);
  assert.is(top.code, 0);
  for (const name of COMMANDS) assert.match(top.stdout.toString(), new RegExp(`\\n  ${name} `));
  for (const name of COMMANDS) {
    const help = await runCli([name, '--help']);
    assert.is(help.code, 0, name);
    assert.match(help.stdout.toString(), new RegExp(`^Usage: iop-agent ${name}`));
  }
});

test('--version prints the package version, also through npx in the checkout', async () => {
  const result = await runCli(['--version']);
  const version = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')).version;
  assert.is(result.stdout.toString().trim(), `iop-agent ${version}`);
  const npx = await runCli(['iop-agent', '--version'], { command: ['npx', '--no-install'] });
  assert.is(npx.code, 0, npx.stderr);
  assert.is(npx.stdout.toString().trim(), `iop-agent ${version}`);
});

test('bad usage exits 2 with a message naming the problem', async () => {
  const cases: [string[], RegExp][] = [
    [[], /Usage/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['sample', '--bogus'], /Unknown option '--bogus'/],
    [['sample', '--out', 'x'], /--count is required/],
    [['sample', '--count', 'ten', '--out', 'x'], /--count expects a whole number/],
    [['verify', 'a', 'b'], /expected 0 to 1 arguments/],
    [['verify', '--pubkey', 'abc'], /--pubkey/],
    [['verify', '--pubkey', 'ab'], /32 bytes/],
    [['id', '--log-level', 'loud'], /--log-level expects/],
  ];
  for (const [args, pattern] of cases) {
    const result = await runCli(args);
    assert.is(result.code, 2, args.join(' '));
    assert.match(result.stderr + result.stdout.toString(), pattern);
  }
});

test('id --json prints the id and the raw public key; the id is stable', async () => {
  const first = await runCli(['id', '--json', '--state-dir', state]);
  assert.is(first.code, 0, first.stderr);
  const id = JSON.parse(first.stdout.toString());
  assert.equal(Object.keys(id), ['id', 'publicKey']);
  assert.match(id.publicKey, /^[0-9a-f]{64}$/);
  assert.match(id.id, /^[a-z2-7]+$/);
  const again = JSON.parse((await runCli(['id', '--json', '--state-dir', state])).stdout.toString());
  assert.equal(again, id);
  const human = await runCli(['id', '--state-dir', state]);
  assert.match(human.stdout.toString(), new RegExp(`id:\\s+${id.id}`));
});

test('sample writes N signed messages; verify prints one JSON line each', async () => {
  const sample = await runCli(['sample', '--count', '5', '--out', sampleFile, '--state-dir', state]);
  assert.is(sample.code, 0, sample.stderr);
  const id = JSON.parse((await runCli(['id', '--json', '--state-dir', state])).stdout.toString());
  const verify = await runCli(['verify', sampleFile, '--pubkey', id.publicKey]);
  assert.is(verify.code, 0, verify.stderr);
  const lines = jsonLines(verify.stdout);
  assert.is(lines.length, 5);
  for (const line of lines) {
    assert.equal(Object.keys(line), ['device', 'seq', 'prev', 'valid', 'chain', 'records']);
    assert.is(line.device, id.id);
    assert.is(line.valid, true);
    assert.match(line.prev, /^[0-9a-f]{64}$/);
    const names = line.records.map((r: { n: string }) => r.n);
    assert.equal(names, ['temperature', 'humidity', 'pressure', 'pulse/total', 'pulse/rate']);
    for (const record of line.records) {
      assert.type(record.v, 'number');
      // A box whose clock is not synchronised (as in most CI containers) writes no wall time.
      if (record.tq === 'none') assert.ok(record.t === undefined && record.up > 0, 'uptime instead of an untrusted time');
      else assert.ok(record.t > 1.7e9 && record.t < 2.2e9, 'absolute time in seconds');
    }
  }
  assert.equal(lines.map((l) => l.chain), ['start', 'ok', 'ok', 'ok', 'ok']);
  const seqs = lines.map((l) => l.seq);
  assert.equal(seqs, [seqs[0], seqs[0] + 1, seqs[0] + 2, seqs[0] + 3, seqs[0] + 4]);
  // reading from standard input gives the same result
  const stdin = await runCli(['verify', '-'], { input: readFileSync(sampleFile) });
  assert.is(stdin.code, 0);
  assert.equal(jsonLines(stdin.stdout), lines);
});

test('verify fails with a one-line reason on tampered, broken, gapped, truncated and empty input', async () => {
  const items = splitCborSequence(readFileSync(sampleFile)).map((i) => Buffer.from(i.bytes));
  const file = join(dir.path, 'bad.cbor');
  const check = async (bytes: Buffer, pattern: RegExp, extra: string[] = []) => {
    writeFileSync(file, bytes);
    const result = await runCli(['verify', file, ...extra]);
    assert.is(result.code, 1, `expected failure for ${pattern}`);
    assert.is(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, pattern);
    return result;
  };
  const tampered = Buffer.concat(items);
  tampered[items[0]!.length + 60]! ^= 0x04;
  await check(tampered, /message 1 .*(signature does not verify|payload)/);
  await check(Buffer.concat([items[0]!, items[2]!, items[1]!]), /message 1 .*gap/); // reordered: the gap shows first
  await check(Buffer.concat([items[0]!, items[1]!, items[1]!]), /message 2 .*chain broken/);
  const gap = await check(Buffer.concat([items[0]!, items[1]!, items[3]!]), /message 2 .*gap/);
  assert.is(jsonLines(gap.stdout)[2].chain, 'gap');
  writeFileSync(file, Buffer.concat([items[0]!, items[1]!, items[3]!]));
  assert.is((await runCli(['verify', file, '--allow-gaps'])).code, 0);
  await check(Buffer.concat(items).subarray(0, -3), /message 4 .*truncated/);
  await check(Buffer.from('hello, world'), /message 0/);
  await check(Buffer.alloc(0), /empty/);
  const other = JSON.parse((await runCli(['id', '--json', '--state-dir', join(dir.path, 'other')])).stdout.toString());
  await check(Buffer.concat(items), /not the device of the given public key/, ['--pubkey', other.publicKey]);
});

test('export writes the stored chain; messages from sample are in it', async () => {
  const out = join(dir.path, 'export.cbor');
  const result = await runCli(['export', '--out', out, '--state-dir', state]);
  assert.is(result.code, 0, result.stderr);
  const exported = readFileSync(out);
  assert.ok(exported.includes(readFileSync(sampleFile)), 'sampled messages are in the store');
  const verify = await runCli(['verify', out]);
  assert.is(verify.code, 0, verify.stderr);
  assert.is(jsonLines(verify.stdout)[0].seq, 0);
  const from = await runCli(['export', '--out', '-', '--from', '3', '--state-dir', state]);
  assert.is(jsonLines((await runCli(['verify'], { input: from.stdout })).stdout)[0].seq, 3);
});

test('demo: embedded broker, gateway, three boxes and a verifying subscriber; stops by itself after --count', async () => {
  const result = await runCli(['demo', '--count', '9', '--interval', '100', '--state-dir', join(dir.path, 'demo')]);
  assert.is(result.code, 0, result.stderr);
  const out = result.stdout.toString();
  assert.match(out, /^embedded MQTT broker on mqtt:\/\/127\.0\.0\.1:\d+$/m);
  const devices = [...out.matchAll(/^box-\d: device ([a-z2-7]+)$/gm)].map((m) => m[1]!);
  assert.is(devices.length, 3);
  const readings = out.split('\n').filter((l) => / verified /.test(l));
  assert.ok(readings.length >= 9, out);
  for (const line of readings) assert.match(line, /seq\s+\d+\s+verified\s+chain (start|ok)\s+temperature=[-\d.]+ Cel/);
  const prefixes = new Set(readings.map((l) => l.slice(0, 10)));
  assert.ok(prefixes.size >= 2, 'readings of several boxes');
  assert.ok([...prefixes].every((p) => devices.some((d) => d.startsWith(p))));
  // aedes speaks MQTT 3.1.1 only: the boxes fall back
  assert.match(result.stderr, /does not speak MQTT 5; using MQTT 3\.1\.1/);
  assert.match(result.stderr, /connected to mqtt:\/\/127\.0\.0\.1:\d+ \(MQTT 3\.1\.1\)/);
});

test('demo: Ctrl-C stops everything cleanly', async () => {
  const { startCli, collect } = await import('./helpers/cli.ts');
  const child = startCli(['demo', '--interval', '100', '--state-dir', join(dir.path, 'demo-int')]);
  const done = collect(child);
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  const end = Date.now() + 20_000;
  while (!/ verified /.test(out) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGINT');
  const result = await done;
  assert.is(result.code, 0, result.stderr);
  assert.match(out, / verified /);
  assert.not.match(result.stderr, /error|while stopping/i);
});

test('run samples until SIGTERM and stops cleanly with exit 0', async () => {
  const { startCli, collect } = await import('./helpers/cli.ts');
  const runState = join(dir.path, 'run');
  const child = startCli(['run', '--interval', '20', '--state-dir', runState]);
  const done = collect(child);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  child.kill('SIGTERM');
  const result = await done;
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stderr, /stopping/);
  const exported = await runCli(['export', '--out', '-', '--state-dir', runState]);
  const lines = jsonLines((await runCli(['verify'], { input: exported.stdout })).stdout);
  assert.ok(lines.length >= 3, `only ${lines.length} messages in 1.5 s at 20 ms`);
});

test.run();
