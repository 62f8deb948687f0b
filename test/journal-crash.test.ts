// The journal under a slow key provider (20 ms a signature, like a secure element) while
// receipts remove readings every few milliseconds, killed with SIGKILL at random moments:
// no sequence number lost or used twice, the chain intact, the count right.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { hash } from 'node:crypto';
import { join } from 'node:path';
import { ReadingVerifier } from '../agent/codec/verify.ts';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import { Journal } from '../agent/store/journal.ts';
import { tempDir } from './helpers/cli.ts';

const dir = tempDir();
test.after(() => dir.remove());
const WRITER = join(import.meta.dirname, 'helpers', 'slow-journal-writer.ts');

/** Runs the writer until it has appended `appends` readings, then a random moment more, then SIGKILL. */
function runAndKill(stateDir: string, appends: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let armed = false;
    const failsafe = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (!armed && out.split('\nS ').length > appends) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), Math.random() * 200);
      }
    });
    child.stderr.on('data', (chunk) => (err += chunk));
    child.on('exit', (code, signal) => {
      clearTimeout(failsafe);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited ${code} ${signal}: ${err}`));
      else resolve(out);
    });
  });
}

test('slow signatures, receipts removing readings meanwhile, 8 kill -9: every seq once, chain intact', async () => {
  const stateDir = join(dir.path, 'slow');
  const signed = new Map<number, string>();
  const removable: [number, number][] = [];
  for (let round = 0; round < 8; round++) {
    const out = await runAndKill(stateDir, 15);
    // A kill can tear the last line; whole lines only.
    for (const line of out.split('\n').slice(0, -1)) {
      const [kind, a, b] = line.split(' ');
      if (kind === 'R') removable.push([Number(a), Number(b)]);
      else {
        const seq = Number(a);
        assert.ok(!signed.has(seq) || signed.get(seq) === b, `seq ${seq} signed twice with different content`);
        signed.set(seq, b!);
      }
    }
  }
  const { key, identity } = loadDeviceKey(stateDir, { create: false });
  const journal = Journal.open(stateDir, identity, key);
  const head = journal.head()!;
  const stored = [...journal.messages()];
  const verifier = new ReadingVerifier({ publicKey: identity.publicKey });
  const byHash = new Map(stored.map((m) => [m.seq, hash('sha256', m.bytes)]));
  assert.ok(signed.size >= 8 * 15, `${signed.size} appends`);
  assert.ok(Math.max(...signed.keys()) <= head.seq, 'an append reported stored is behind the head');
  for (let seq = 0; seq <= head.seq; seq++) {
    const kept = byHash.get(seq);
    if (kept === undefined) {
      assert.ok(removable.some(([first, last]) => first <= seq && seq <= last), `seq ${seq} is gone but no receipt removed it`);
      continue;
    }
    if (signed.has(seq)) assert.is(kept, signed.get(seq), `seq ${seq} stored with other content than reported`);
  }
  if (byHash.has(head.seq)) assert.is(byHash.get(head.seq), Buffer.from(head.hash).toString('hex'), 'the head names the last stored message');
  // Stored neighbours link: nothing was overwritten or signed on a stale head.
  for (let i = 1; i < stored.length; i++) {
    const reading = verifier.verify(stored[i]!.bytes);
    assert.ok(reading.valid);
    if (stored[i - 1]!.seq === stored[i]!.seq - 1) assert.is(Buffer.from(reading.prev).toString('hex'), byHash.get(stored[i - 1]!.seq));
  }
  assert.is(journal.count(), stored.length, 'the stored count matches the rows');
  // And it goes on from the head.
  const next = await journal.append(new Uint8Array([0x80]));
  assert.is(next.seq, head.seq + 1);
  journal.close();
});

test.run();
