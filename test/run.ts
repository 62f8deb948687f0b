// Runs every test file in its own process (uvu suites share nothing), two at a time,
// and ends with the plain line "N passed, M failed".
// Usage: node test/run.ts [name-filter ...]   (TEST_JOBS sets the parallelism)
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const FILE_TIMEOUT_MS = 4 * 60_000;
// A file whose summary is out but which does not exit holds a leaked handle.
const EXIT_GRACE_MS = 15_000;
const jobs = Math.max(1, Number(process.env.TEST_JOBS) || 2);
const filters = process.argv.slice(2);

function findTests(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'slow' || entry.name === 'fixtures' ? [] : findTests(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

interface FileResult { file: string; passed: number; failed: number; output: string; seconds: number }

function runFile(file: string): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { cwd: root, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
    let output = '';
    let lingering: NodeJS.Timeout | undefined;
    const take = (chunk: Buffer) => {
      output += chunk;
      if (!lingering && /Duration:/.test(output)) {
        lingering = setTimeout(() => {
          output += `\n[test runner] ${relative(root, file)} did not exit ${EXIT_GRACE_MS / 1000} s after its summary (a leaked handle) and was killed\n`;
          child.kill('SIGKILL');
        }, EXIT_GRACE_MS);
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => {
      output += `\n[test runner] ${relative(root, file)} ran past ${FILE_TIMEOUT_MS / 1000} s and was killed\n`;
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(lingering);
      const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
      const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
      const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
      // uvu's Total counts the tests that ran; skipped ones are listed apart.
      // A file that crashed before uvu's summary, or exited non-zero with all passing, counts one failure.
      const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
      let failed = total - passed;
      if ((total === 0 && skipped === 0) || (code !== 0 && failed === 0)) failed += 1;
      resolve({ file, passed, failed, output: plain, seconds: (Date.now() - started) / 1000 });
    });
  });
}

// The longest files start first, so the two lanes finish together.
const SLOW_FIRST = ['sync.test.ts', 'sync-crash.test.ts', 'cli.test.ts', 'crash.test.ts'];
const weight = (file: string) => {
  const index = SLOW_FIRST.findIndex((name) => file.endsWith(`/${name}`));
  return index < 0 ? SLOW_FIRST.length : index;
};
const files = findTests(import.meta.dirname)
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort((a, b) => weight(a) - weight(b) || a.localeCompare(b));
const queue = [...files];
const results: FileResult[] = [];
await Promise.all(Array.from({ length: jobs }, async () => {
  for (let file = queue.shift(); file; file = queue.shift()) {
    const result = await runFile(file);
    results.push(result);
    const name = relative(root, file);
    process.stdout.write(`${result.failed ? 'FAIL' : 'ok  '} ${name} (${result.passed} passed, ${result.failed} failed, ${result.seconds.toFixed(1)} s)\n`);
    if (result.failed) process.stdout.write(result.output.split('\n').map((l) => `    ${l}`).join('\n') + '\n');
  }
}));
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exitCode = failed > 0 ? 1 : 0;
