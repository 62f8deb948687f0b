// iop-agent console: the tech's side of the box's serial console.
import { createInterface } from 'node:readline';
import type { Command } from '../command.ts';
import { ConsoleClient } from '../console/client.ts';
import { SerialOpenError } from '../console/serial-port.ts';
import { integerOption } from './options.ts';

export const consoleCommand: Command = {
  name: 'console',
  summary: "talk to a box's serial console (one command, or interactive)",
  usage: 'iop-agent console <path> [--baud N] [--json] [COMMAND ...]',
  help: `      --baud N          baud rate (default 115200)
      --json            the box answers each command with one JSON line
      --owner ADDRESS   passed on to the box's command (pair start --owner 0x…)
With a COMMAND, runs it and prints the answer: exit 0 if it succeeded, 1 if the box
refused it, 2 if the port cannot be opened. Without, an interactive session: type
help for the box's commands, Ctrl-C or Ctrl-D leaves.`,
  options: { baud: { type: 'string' }, json: { type: 'boolean' }, owner: { type: 'string' } },
  positionals: { min: 1, max: 100 },
  async run(context) {
    const [path, ...words] = context.positionals;
    const baud = integerOption(context, 'baud', { min: 300, max: 4_000_000 }) ?? 115_200;
    const owner = typeof context.values.owner === 'string' ? ['--owner', context.values.owner] : [];
    const json = context.values.json ? ['--json'] : [];
    let client: ConsoleClient;
    try {
      client = await ConsoleClient.open(path!, baud);
    } catch (err) {
      context.log.error(err instanceof Error ? err.message : String(err));
      return err instanceof SerialOpenError ? 2 : 1;
    }
    try {
      if (words.length > 0) {
        const answer = await client.run([...words, ...owner, ...json].join(' '));
        context.stdout.write(answer + '\n');
        return succeeded(answer) ? 0 : 1;
      }
      await interactive(client, json, context.stdout, context.signal);
      return 0;
    } catch (err) {
      context.log.error(err instanceof Error ? err.message : String(err));
      return 1;
    } finally {
      await client.close();
    }
  },
};

/** JSON answers carry ok; the human form of a refusal starts with "error:". */
function succeeded(answer: string): boolean {
  if (answer.startsWith('{')) {
    try { return (JSON.parse(answer) as { ok?: unknown }).ok === true; } catch { return false; }
  }
  return !answer.startsWith('error:');
}

async function interactive(client: ConsoleClient, json: string[], stdout: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: stdout, prompt: 'iop> ', historySize: 200, terminal: process.stdin.isTTY === true });
  stdout.write(`connected to ${client.path}: type help for the box's commands, Ctrl-C leaves\n`);
  rl.prompt();
  const done = new Promise<void>((resolve) => {
    rl.on('close', () => resolve());
    rl.on('SIGINT', () => rl.close());
    signal.addEventListener('abort', () => rl.close(), { once: true });
  });
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    // Lines are sent one at a time; a pasted block waits its turn.
    queue = queue.then(async () => {
      if (line.trim() !== '') {
        try {
          stdout.write((await client.run([line, ...json].join(' '))) + '\n');
        } catch (err) {
          stdout.write(`${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
      rl.prompt();
    });
  });
  await done;
  await queue;
}
