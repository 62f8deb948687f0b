// A pair of connected pseudo-terminals made by socat: the agent opens one end as a
// serial port, a sensor emulator writes to the other.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface PtyPair {
  /** The end the agent opens. */
  agent: string;
  /** The end the emulator opens. */
  device: string;
  close(): Promise<void>;
}

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export function socatMissing(): string | undefined {
  return hasCommand('socat') ? undefined : 'needs socat (Debian package socat)';
}

export async function ptyPair(dir: string, name: string): Promise<PtyPair> {
  const agent = join(dir, `${name}-agent`);
  const device = join(dir, `${name}-device`);
  const child: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${agent}`], { stdio: 'ignore' });
  const end = Date.now() + 10_000;
  while (!(existsSync(agent) && existsSync(device))) {
    if (Date.now() > end || child.exitCode !== null) throw new Error('socat did not make the pty pair');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    agent,
    device,
    close: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}
