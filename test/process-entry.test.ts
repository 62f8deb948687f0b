import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const entry = pathToFileURL(join(import.meta.dirname, '..', 'agent', 'process-entry.ts')).href;

function runEntry(body: string) {
  const script = `import { runAsProcess } from ${JSON.stringify(entry)};\nrunAsProcess(${body});`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
}

test('a command whose promise never settles exits 70 with a message, not 0 in silence', () => {
  const result = runEntry('() => new Promise(() => {})');
  assert.is(result.status, 70);
  assert.match(result.stderr, /ended before the command finished/);
});

test('a settled command keeps its own exit code and prints nothing extra', () => {
  const result = runEntry('async () => 3');
  assert.is(result.status, 3);
  assert.is(result.stderr, '');
});

test('a rejected command exits 1 and names the error', () => {
  const result = runEntry('async () => { throw new Error("boom in the command") }');
  assert.is(result.status, 1);
  assert.match(result.stderr, /iop-agent: Error: boom in the command/);
  assert.not.match(result.stderr, /ended before/);
});

test.run();
