// Pseudo-terminal pairs from socat, standing in for the box's tty and the tech's USB
// serial adapter. Stable paths (symlinks in a temp dir) survive a socat restart, which
// is how a test unplugs and replugs the cable.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export function socatMissing(): string | undefined {
  return spawnSync('socat', ['-V']).error ? 'needs socat (apt-get install socat)' : undefined;
}

export interface PtyPair {
  box: string;
  tech: string;
  /** Unplug: the socat process and both ptys go away. */
  unplug(): Promise<void>;
  /** Plug in again: a new pair at the same paths. */
  plug(): Promise<void>;
}

export async function ptyPair(dir: string): Promise<PtyPair> {
  const box = join(dir, 'box-tty');
  const tech = join(dir, 'tech-tty');
  let child: ChildProcess | undefined;
  const plug = async () => {
    child = spawn('socat', [`pty,raw,echo=0,link=${box}`, `pty,raw,echo=0,link=${tech}`], { stdio: 'ignore' });
    for (let i = 0; i < 200 && !(existsSync(box) && existsSync(tech)); i++) await new Promise((r) => setTimeout(r, 10));
    if (!existsSync(box)) throw new Error('socat made no pty pair');
  };
  const unplug = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  };
  await plug();
  return { box, tech, plug, unplug };
}

/** Rejects after ms: wraps an async test step that could hang. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}
