// A pseudo-terminal for an emulated radio: socat makes the pty (the agent opens `path`
// as its serial port) and hands the other side to this process as stdin/stdout pipes.
// Killing it is pulling the USB radio: the path disappears and the agent's reads fail.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export function haveCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const haveSocat = () => haveCommand('socat');

export interface Pty {
  readonly path: string;
  write(bytes: Uint8Array): void;
  onData(handler: (bytes: Uint8Array) => void): void;
  /** Pulls the plug: socat ends and the pty goes with it. */
  close(): Promise<void>;
}

export async function openPty(path: string): Promise<Pty> {
  return socatPty(path, `pty,raw,echo=0,link=${path},mode=600`);
}

/**
 * The radio's host side on a terminal that exists already (the pty QEMU made for a
 * guest's UART): socat opens it raw, and closing unplugs nothing but this end.
 */
export function attachPty(path: string): Promise<Pty> {
  return socatPty(path, `open:${path},raw,echo=0`);
}

async function socatPty(path: string, address: string): Promise<Pty> {
  const child: ChildProcess = spawn('socat', [address, 'STDIO'], { stdio: ['pipe', 'pipe', 'ignore'] });
  let handler: (bytes: Uint8Array) => void = () => {};
  child.stdout!.on('data', (chunk: Buffer) => handler(new Uint8Array(chunk)));
  child.stdin!.on('error', () => {});
  const end = Date.now() + 5000;
  while (!existsSync(path)) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`socat made no pty at ${path}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return {
    path,
    write: (bytes) => {
      if (child.exitCode === null && !child.stdin!.destroyed) child.stdin!.write(bytes);
    },
    onData: (h) => (handler = h),
    close: () => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}
