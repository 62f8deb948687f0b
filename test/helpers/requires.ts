// Tests that need something a plain machine lacks (a tool, a source tree) declare it
// here; without it they are skipped with a message that says what to install.
import { execFileSync } from 'node:child_process';
import { test } from 'uvu';

/** True when `name` is a command on PATH (or an absolute path that exists). */
export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Registers `fn` as a test, or, when `missing` names something absent, as a skipped
 * test whose reason is printed.
 */
export function testIf(missing: string | undefined, name: string, fn: () => void | Promise<void>): void {
  if (missing === undefined) {
    test(name, fn);
  } else {
    console.log(`skipped "${name}": ${missing}`);
    test.skip(name, fn);
  }
}
