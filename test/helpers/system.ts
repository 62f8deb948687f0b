// Processes of a small deployment for end-to-end tests: gateway, boxes, subscriber,
// each a real `iop-agent` process against a real Mosquitto.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, collect, jsonLines, runCli, startCli, tempDir, type CliOptions, type CliResult } from './cli.ts';
import { startMosquitto, type Broker, type BrokerOptions } from './mosquitto.ts';

export interface Running {
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  /** SIGTERM/SIGINT and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<CliResult>;
}

export function start(args: string[], options: CliOptions = {}): Running {
  const child = startCli(args, options);
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (c) => (stderr += c));
  child.stdout!.on('data', (c) => (stdout += c));
  const done = collect(child, { timeoutMs: 600_000 });
  return {
    child,
    stderr: () => stderr,
    stdout: () => stdout,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return done;
    },
  };
}

export async function gatewayKey(stateDir: string): Promise<string> {
  const result = await runCli(['id', '--json', '--state-dir', stateDir]);
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout.toString()).publicKey;
}

/** A box config file: small timeouts so tests run fast. */
export function boxConfig(dir: string, name: string, uplink: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({
    stateDir: join(dir, name),
    sampling: { intervalMs: 100 },
    uplink: { ackTimeoutMs: 1500, reconnectMinMs: 100, reconnectMaxMs: 1000, ...uplink },
    ...extra,
  }));
  return file;
}

/** Sequence numbers of the verified readings in the box's store (what is still queued). */
export async function queuedSeqs(stateDir: string): Promise<number[]> {
  const exported = await runCli(['export', '--out', '-', '--state-dir', stateDir]);
  if (exported.stdout.length === 0) return [];
  return jsonLines((await runCli(['verify', '-', '--allow-gaps'], { input: exported.stdout })).stdout).map((r) => (r as { seq: number }).seq);
}

export async function queued(stateDir: string): Promise<number> {
  return (await queuedSeqs(stateDir)).length;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** JSON lines a `subscribe --json` process printed so far. */
export function readings(subscriber: Running): { device: string; seq: number; valid: boolean; chain: string }[] {
  return subscriber.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** The device id of a state dir (made with its key on first use). */
export async function deviceId(stateDir: string): Promise<string> {
  return JSON.parse((await runCli(['id', '--json', '--state-dir', stateDir])).stdout.toString()).id;
}

/** Runs the CLI inside a network namespace. */
export function inNamespace(ns: string): CliOptions {
  return { command: ['ip', 'netns', 'exec', ns, process.execPath, CLI] };
}

interface Suite {
  before(hook: () => unknown): void;
  after(hook: () => unknown): void;
}

/**
 * What an end-to-end test file shares: a temp dir, one Mosquitto started before its
 * tests, and every process it launches, all stopped and removed after them.
 */
export function testDeployment(suite: Suite, options: BrokerOptions = {}) {
  const dir = tempDir();
  const running: Running[] = [];
  let started: Broker | undefined;
  const broker = new Proxy({} as Broker, {
    get(_target, property) {
      if (!started) throw new Error('the test broker starts in test.before');
      return started[property as keyof Broker];
    },
  });
  suite.before(async () => {
    started = await startMosquitto(options);
  });
  suite.after(async () => {
    for (const r of running) await r.stop('SIGKILL');
    await started?.stop();
    dir.remove();
  });
  const launch = (args: string[], cli: CliOptions = {}) => {
    const r = start(args, cli);
    running.push(r);
    return r;
  };
  return { dir, broker, running, launch };
}
