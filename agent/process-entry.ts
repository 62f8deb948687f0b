// Wires signals, a closed stdout and exit codes around a command's main().
import type { MainIo } from './main.ts';

export type CommandMain = (argv: string[], io: MainIo) => Promise<number>;

/** Exit code for a command that ended without settling (EX_SOFTWARE). */
export const UNSETTLED_EXIT = 70;

export function runAsProcess(main: CommandMain): void {
  const controller = new AbortController();
  let signals = 0;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      // A second Ctrl-C means "now": the store is transactional, nothing is lost.
      if (++signals > 1) process.exit(130);
      controller.abort();
    });
  }
  // A closed pipe (iop-agent verify | head) ends output quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
  });

  let settled = false;
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, signal: controller.signal }).then(
    (code) => { settled = true; process.exitCode = code; },
    (err: unknown) => {
      settled = true;
      process.stderr.write(`iop-agent: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
  // Node ends a process whose event loop is empty even while a promise is
  // pending. A command that never settled is a bug and must not look like
  // success (exit 0, no output) to a script or a supervisor.
  process.on('exit', () => {
    if (settled || process.exitCode !== undefined) return;
    process.stderr.write('iop-agent: ended before the command finished (nothing was left to wait for; this is a bug, please report it)\n');
    process.exitCode = UNSETTLED_EXIT;
  });
}
