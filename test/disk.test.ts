// A full disk and a state dir that turns read-only under the running agent: it keeps
// running (or stops with a clear error), and what it had stored stays intact.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { jsonLines, runCli, tempDir } from './helpers/cli.ts';
import { sleep, start as startProcess, until, type Running } from './helpers/system.ts';

function start(args: string[]): Running {
  const agent = startProcess(args);
  agents.push(agent);
  return agent;
}

const dir = tempDir();
const mounts: string[] = [];
const agents: Running[] = [];
test.after(async () => {
  for (const agent of agents) await agent.stop('SIGKILL');
  for (const m of mounts.reverse()) {
    try { execFileSync('umount', ['-l', m]); } catch { /* already gone */ }
  }
  dir.remove();
});

function smallDisk(name: string, size: string): string {
  const path = join(dir.path, name);
  mkdirSync(path);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', path]);
  mounts.push(path);
  return path;
}

async function assertStoreIntact(state: string): Promise<number> {
  const db = new DatabaseSync(join(state, 'store.db'));
  const check = db.prepare('PRAGMA integrity_check').get() as { integrity_check: string };
  db.close();
  assert.is(check.integrity_check, 'ok');
  const exported = await runCli(['export', '--out', '-', '--state-dir', state]);
  assert.is(exported.code, 0, exported.stderr);
  const verify = await runCli(['verify', '-'], { input: exported.stdout });
  assert.is(verify.code, 0, verify.stderr);
  const lines = jsonLines(verify.stdout);
  lines.forEach((line, i) => assert.is(line.seq, i));
  return lines.length;
}

test('the disk fills up: sample stops with a clear error, run keeps going and resumes when there is room', async () => {
  const state = smallDisk('full', '1m');
  const fill = await runCli(['sample', '--count', '1000000', '--out', '/dev/null', '--state-dir', state]);
  assert.is(fill.code, 1, fill.stderr);
  assert.match(fill.stderr, /iop-agent sample: cannot store message: the disk is full/);
  const stored = await assertStoreIntact(state);
  assert.ok(stored > 100, `${stored} readings stored before the disk filled`);

  const config = join(dir.path, 'full.json');
  writeFileSync(config, JSON.stringify({ stateDir: state, sampling: { intervalMs: 10 } }));
  const agent = start(['run', '--config', config]);
  await until('the disk full error', () => /reading not stored: cannot store message: the disk is full/.test(agent.stderr()), 30_000);
  await sleep(1000);
  assert.is(agent.child.exitCode, null, 'still running');
  assert.is(await assertStoreIntact(state), stored, 'nothing stored was lost or damaged');
  execFileSync('mount', ['-o', 'remount,size=4m', state]);
  await sleep(1500);
  const result = await agent.stop();
  assert.is(result.code, 0, result.stderr);
  const errors = result.stderr.split('\n').filter((l) => /disk is full/.test(l));
  assert.ok(errors.length <= 2, `the error is rate-limited, said ${errors.length} times`);
  const after = await assertStoreIntact(state);
  assert.ok(after > stored + 20, `stored again once there was room (${stored} -> ${after})`);
});

test('a read-only state dir: run stops with a clear error, exit 1, and the store stays intact', async () => {
  const state = smallDisk('ro', '4m');
  assert.is((await runCli(['sample', '--count', '50', '--out', '/dev/null', '--state-dir', state])).code, 0);
  execFileSync('mount', ['-o', 'remount,ro', state]);
  const result = await start(['run', '--state-dir', state, '--interval', '20']).stop('SIGCONT');
  assert.is(result.code, 1, result.stderr);
  assert.match(result.stderr, /iop-agent run: state dir .*\/ro is not writable: it is on a read-only file system/);
  execFileSync('mount', ['-o', 'remount,rw', state]);
  assert.is(await assertStoreIntact(state), 50);
});

test.run();
