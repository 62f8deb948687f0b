// Sequence numbers and the chain survive kill -9 at random moments: signing and
// storing are one transaction, so nothing is reused, skipped or broken.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cborItemLength, splitCborSequence } from '../agent/codec/cbor.ts';
import { collect, jsonLines, runCli, startCli, tempDir } from './helpers/cli.ts';

const dir = tempDir();
const state = join(dir.path, 'state');
test.after(() => dir.remove());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out waiting for the agent to start sampling');
    await sleep(10);
  }
}

test('20 restarts, most of them kill -9 while sampling: no seq reused or skipped, chain unbroken', async () => {
  const sampleFiles: string[] = [];
  let killedWhileRunning = 0;
  for (let round = 0; round < 20; round++) {
    const mode = round % 4; // 0, 1: run + kill -9; 2: sample + kill -9; 3: run + SIGTERM
    const out = join(dir.path, `sample-${round}.cbor`);
    const args = mode === 2
      ? ['sample', '--count', '100000', '--out', out, '--state-dir', state]
      : ['run', '--interval', '10', '--state-dir', state, '--log-level', 'debug'];
    const child = startCli(args);
    const done = collect(child, { timeoutMs: 30_000 });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    // Wait until it is really signing, then strike at a random moment.
    await waitFor(() => (mode === 2 ? existsSync(out) && statSync(out).size > 0 : /stored seq/.test(stderr)), 20_000);
    await sleep(Math.random() * 300);
    child.kill(mode === 3 ? 'SIGTERM' : 'SIGKILL');
    const result = await done;
    if (mode === 3) assert.is(result.code, 0, result.stderr);
    else if (result.signal === 'SIGKILL') killedWhileRunning++;
    if (mode === 2) sampleFiles.push(out);
  }
  assert.ok(killedWhileRunning >= 15, `only ${killedWhileRunning} kills landed while sampling`);

  const exported = await runCli(['export', '--out', '-', '--state-dir', state]);
  assert.is(exported.code, 0, exported.stderr);
  const verify = await runCli(['verify', '-'], { input: exported.stdout });
  assert.is(verify.code, 0, verify.stderr);
  const lines = jsonLines(verify.stdout);
  assert.ok(lines.length > 100, `only ${lines.length} messages`);
  lines.forEach((line, index) => {
    assert.is(line.seq, index, 'sequence numbers run 0..N-1 without reuse or gap');
    assert.is(line.valid, true);
    assert.is(line.chain, index === 0 ? 'start' : 'ok');
  });

  // Every message a killed `sample` had written is, byte for byte, in the store's chain.
  const exportedBytes = Buffer.from(exported.stdout);
  let checked = 0;
  for (const file of sampleFiles) {
    const content = readFileSync(file);
    // A kill in the middle of a write tears only the last message; all before it must match.
    const whole = splitCborSequence(content.subarray(0, lastCompleteOffset(content))).map((item) => item.bytes);
    for (const message of whole) {
      assert.ok(exportedBytes.includes(Buffer.from(message)), 'a message in a sample file is missing from the chain');
      checked++;
    }
  }
  assert.ok(checked > 0);
});

test('two processes signing on one state dir at once never share a sequence number', async () => {
  const shared = join(dir.path, 'shared');
  assert.is((await runCli(['id', '--state-dir', shared])).code, 0);
  const runs = await Promise.all([0, 1, 2].map((i) => runCli(['sample', '--count', '60', '--out', join(dir.path, `p${i}.cbor`), '--state-dir', shared])));
  for (const run of runs) assert.is(run.code, 0, run.stderr);
  const exported = await runCli(['export', '--out', '-', '--state-dir', shared]);
  const lines = jsonLines((await runCli(['verify', '-'], { input: exported.stdout })).stdout);
  assert.is(lines.length, 180);
  lines.forEach((line, index) => {
    assert.is(line.seq, index);
    assert.is(line.chain, index === 0 ? 'start' : 'ok');
  });
});

/** Bytes up to the end of the last whole CBOR item: a kill can tear the final write. */
function lastCompleteOffset(content: Buffer): number {
  let offset = 0;
  for (;;) {
    try {
      offset += cborItemLength(content, offset);
    } catch {
      return offset;
    }
    if (offset >= content.length) return offset;
  }
}

test.run();
