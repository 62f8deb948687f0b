// The CLI: one executable, a subcommand each job. Exit codes: 0 ok, 1 failure,
// 2 bad usage or configuration.
import { parseArgs } from 'node:util';
import type { Command } from './command.ts';
import { configCommand } from './commands/config.ts';
import { demoCommand } from './commands/demo.ts';
import { exportCommand } from './commands/export.ts';
import { gatewayCommand } from './commands/gateway.ts';
import { subscribeCommand } from './commands/subscribe.ts';
import { idCommand } from './commands/id.ts';
import { runCommand } from './commands/run.ts';
import { sampleCommand } from './commands/sample.ts';
import { verifyCommand } from './commands/verify.ts';
import { meshCommand } from './commands/mesh.ts';
import { simCommand } from './commands/sim.ts';
import { consoleCommand } from './commands/console.ts';
import { chainCommand } from './commands/chain.ts';
import { proofCommand } from './commands/proof.ts';
import { jobCommand } from './commands/job.ts';
import { rewardsCommand } from './commands/rewards.ts';
import { IopError, errorMessage } from './errors.ts';
import { createLogger, type LogLevel } from './log.ts';
import { VERSION } from './version.ts';


const COMMANDS: Command[] = [runCommand, idCommand, sampleCommand, verifyCommand, exportCommand, gatewayCommand, subscribeCommand, meshCommand, simCommand, consoleCommand, configCommand, demoCommand, rewardsCommand, jobCommand, chainCommand, proofCommand];

const LOG_LEVELS: readonly string[] = ['debug', 'info', 'warn', 'error'];

export interface MainIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  signal: AbortSignal;
}

export async function main(argv: string[], io: MainIo): Promise<number> {
  const say = (text: string) => io.stderr.write(text.endsWith('\n') ? text : text + '\n');
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(topHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`iop-agent ${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    say(`iop-agent: unknown command '${name}'. Commands: ${COMMANDS.map((c) => c.name).join(', ')}. See 'iop-agent --help'.`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' }, 'log-level': { type: 'string' } },
      allowPositionals: command.positionals !== undefined,
      strict: true,
    });
  } catch (err) {
    say(`iop-agent ${name}: ${errorMessage(err).replace(/\. To specify a positional argument.*$/s, '')}. See 'iop-agent ${name} --help'.`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(commandHelp(command));
    return 0;
  }
  const { min, max } = command.positionals ?? { min: 0, max: 0 };
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    say(`iop-agent ${name}: expected ${min === max ? min : `${min} to ${max}`} arguments, got ${parsed.positionals.length}. Usage: ${command.usage}`);
    return 2;
  }
  const level = parsed.values['log-level'];
  if (level !== undefined && (typeof level !== 'string' || !LOG_LEVELS.includes(level))) {
    say(`iop-agent ${name}: --log-level expects one of ${LOG_LEVELS.join(', ')}`);
    return 2;
  }
  const log = createLogger({ level: (level as LogLevel | undefined) ?? 'info', namespace: name, sink: { write: say } });
  try {
    return await command.run({ values: parsed.values, positionals: parsed.positionals, log, stdout: io.stdout, signal: io.signal });
  } catch (err) {
    if (err instanceof IopError) {
      say(`iop-agent ${name}: ${err.message}`);
      return err.exitCode;
    }
    say(`iop-agent ${name}: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  }
}

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `iop-agent ${VERSION}: signed sensor readings, MQTT sync and ad hoc mesh for Internet-of-People boxes

Usage: iop-agent <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

'iop-agent <command> --help' describes a command. Exit codes: 0 ok, 1 failure, 2 bad usage or configuration.
`;
}

function commandHelp(command: Command): string {
  // Option lines first, then any prose the command adds after them.
  const lines = command.help.split('\n');
  const firstProse = lines.findIndex((line) => /^\S/.test(line));
  const options = firstProse < 0 ? lines : lines.slice(0, firstProse);
  const prose = firstProse < 0 ? [] : lines.slice(firstProse);
  return `Usage: ${command.usage}

${command.summary}

Options:
${[...options, '      --log-level L     debug, info, warn or error (default info)', '  -h, --help            this help'].join('\n')}
${prose.length ? `\n${prose.join('\n')}\n` : ''}`;
}
