// Runs the agent's CLI as a separate process, the way a person or a script would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'agent', 'cli.ts');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface CliOptions {
  input?: Uint8Array;
  env?: Record<string, string>;
  /** Command to run instead of `node agent/cli.ts` (a built executable). */
  command?: string[];
  timeoutMs?: number;
}

export function startCli(args: string[], options: CliOptions = {}): ChildProcess {
  const [command, ...prefix] = options.command ?? [process.execPath, CLI];
  return spawn(command!, [...prefix, ...args], {
    cwd: ROOT,
    env: { ...process.env, IOP_AGENT_CONFIG: '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = startCli(args, options);
  return collect(child, options);
}

export function collect(child: ChildProcess, options: CliOptions = {}): Promise<CliResult> {
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  child.stdin!.on('error', () => {});
  child.stdin!.end(options.input);
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`command did not finish within ${timeoutMs} ms: ${child.spawnargs.join(' ')}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(stdout), stderr });
    });
  });
}

export function tempDir(prefix = 'iop-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function jsonLines(stdout: Buffer): any[] {
  return stdout.toString().split('\n').filter(Boolean).map((line) => JSON.parse(line));
}
