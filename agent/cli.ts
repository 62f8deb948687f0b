#!/usr/bin/env node
// Process entry: wires signals and exit codes around main().
import { main } from './main.ts';

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

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, signal: controller.signal }).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`iop-agent: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
