// The emulated arm64 box (npm run image) booted in QEMU for tests: Debian's arm64
// kernel, the arm64 single executable started by the Buildroot init script as its own
// user, state on a virtio disk that survives a power cut. The rig gives tests the guest
// console (its log), two serial ports on host pseudo-terminals (/dev/ttyS0 the console
// port for the tech command, /dev/ttyS1 a radio port), and a control channel to a
// guest-side helper (set gpio-sim pulls, read the agent's RSS, stat files).
//
// Network: QEMU user networking with restrict=on, so the guest reaches nothing at all,
// except host services forwarded one by one (guestfwd) at 10.0.2.100:<port>.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import type { Image } from '../../images/emulated-box/build.ts';
import { buildArm64Image, ExecutableBuildError } from '../../images/image.ts';
import { ROOT } from './cli.ts';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { hasCommand } from './requires.ts';

export const QEMU = 'qemu-system-aarch64';

/** Why the emulated box cannot run here, or undefined. */
export function emulatedBoxMissing(): string | undefined {
  const tools = [QEMU, 'apt-get', 'dpkg-deb', 'mkfs.ext4', 'socat'].filter((tool) => !hasCommand(tool));
  if (tools.length > 0) return `needs ${tools.join(', ')} (apt-get install qemu-system-arm e2fsprogs socat)`;
  return undefined;
}

/**
 * The image of this checkout: the arm64 executable and its addons, the image around
 * them, all in .cache/emulated-box (Debian packages, the executable, the image). Test
 * files share them: the first one builds (one at a time, under a lock), the others use
 * what is there while the sources it was built from are unchanged (images/image.ts).
 * Returns the image, or why the box cannot run here. `_dir` is the test's own directory
 * (unused: kept for the callers' signature).
 */
export function prepareImage(_dir: string): { image?: Image; missing?: string } | Promise<{ image?: Image; missing?: string }> {
  const missing = emulatedBoxMissing();
  if (missing) return { missing };
  const cache = join(ROOT, '.cache', 'emulated-box');
  return withCacheLock(() => buildArm64Image({ dist: join(cache, 'dist'), out: join(cache, 'image'), cache })).then(
    (image) => ({ image }),
    (err: Error) => ({ missing: err instanceof ExecutableBuildError ? err.message
      : `needs the image's Debian arm64 packages (apt-get download from the Debian archive): ${err.message.split('\n')[0]}` }),
  );
}

/** Runs `body` holding a lock directory beside the cache (a stale lock, 20 min old, is taken over). */
async function withCacheLock<T>(body: () => Promise<T>): Promise<T> {
  const lock = join(ROOT, '.cache', 'emulated-box.lock');
  mkdirSync(join(ROOT, '.cache'), { recursive: true });
  for (let waited = 0; ; waited += 500) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 20 * 60_000 || waited > 15 * 60_000) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  try {
    return await body();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** A fresh ext4 data disk (raw image file) for the box's /var/lib. */
export function makeDisk(path: string, sizeMiB = 64): string {
  execFileSync('truncate', ['-s', `${sizeMiB}M`, path]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'iop-data', path]);
  return path;
}

export interface BootOptions {
  kernel: string;
  initrd: string;
  disk: string;
  /** the directory for the control socket */
  dir: string;
  /** host TCP ports the guest reaches as 10.0.2.2:<guestPort> */
  forwards?: { guestPort: number; hostPort: number }[];
  /** kernel command line parameters for the guest's init (iop_broker, iop_interval) */
  params?: Record<string, string>;
}

export interface EmulatedBox {
  /** Everything the guest printed on its console so far (init, kernel, the agent's log). */
  output(): string;
  /** The first match of `pattern` in the console output from offset `from` on (default: all of it). */
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<RegExpExecArray>;
  /** Host pseudo-terminals wired to the guest's /dev/ttyS0 (console) and /dev/ttyS1 (radio). */
  consolePty: string;
  radioPty: string;
  /** One command to the guest's control helper; its one-line reply. */
  control(command: string, timeoutMs?: number): Promise<string>;
  /** kill -9 of QEMU: the guest loses power mid-whatever. */
  powerCut(): Promise<void>;
  /** Stops QEMU (no clean guest shutdown: the box is treated like hardware). */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

let boots = 0;

export async function bootBox(options: BootOptions): Promise<EmulatedBox> {
  const controlSocket = join(options.dir, `control-${process.pid}-${++boots}.sock`);
  const forwards = (options.forwards ?? []).map(({ guestPort, hostPort }) =>
    `,guestfwd=tcp:10.0.2.100:${guestPort}-cmd:socat STDIO TCP:127.0.0.1:${hostPort}`).join('');
  const params = Object.entries(options.params ?? {}).map(([key, value]) => `${key}=${value}`).join(' ');
  const args = [
    '-M', 'virt', '-cpu', 'cortex-a53', '-smp', '1', '-m', '512', '-nographic', '-no-reboot',
    '-kernel', options.kernel, '-initrd', options.initrd, '-append', `console=ttyAMA0 quiet ${params}`,
    '-netdev', `user,id=n0,restrict=on${forwards}`, '-device', 'virtio-net-device,netdev=n0',
    '-drive', `file=${options.disk},format=raw,if=none,id=d0,cache=writeback`, '-device', 'virtio-blk-device,drive=d0',
    '-device', 'virtio-rng-device',
    '-chardev', 'pty,id=console', '-device', 'pci-serial,chardev=console',
    '-chardev', 'pty,id=radio', '-device', 'pci-serial,chardev=radio',
    '-chardev', `socket,id=control,path=${controlSocket},server=on,wait=off`,
    '-device', 'virtio-serial-device', '-device', 'virtconsole,chardev=control',
  ];
  // QEMU dies with the test process even when that is killed (the runner's timeout).
  const command = hasCommand('setpriv') ? ['setpriv', '--pdeathsig', 'KILL', QEMU] : [QEMU];
  const child = spawn(command[0]!, [...command.slice(1), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  // BOX_TRACE=1: each console line on stderr as it comes, with the test process's clock
  // (where a slow run spends its time).
  const name = `box${boots}`;
  let traced = 0;
  const trace = () => {
    for (let newline = output.indexOf('\n', traced); newline >= 0; newline = output.indexOf('\n', traced)) {
      const line = output.slice(traced, newline).trim();
      traced = newline + 1;
      if (line) process.stderr.write(`[${(performance.now() / 1000).toFixed(1)} s ${name}] ${line}\n`);
    }
  };
  child.stdout!.on('data', (chunk) => {
    output += chunk;
    if (process.env.BOX_TRACE) trace();
  });
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.on('exit', () => {
    running.delete(child);
    resolve();
  }));

  const waitFor = async (pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(output.slice(from));
      if (match) return match;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`QEMU exited before ${pattern}:\n${output.slice(-3000)}`);
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} on the box console:\n${output.slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    control?.destroy();
  };

  let control: Socket | undefined;
  let controlBuffer = '';
  try {
    const pty = async (label: string) => (await waitFor(new RegExp(`redirected to (/dev/pts/\\d+) \\(label ${label}\\)`), 20_000))[1]!;
    const consolePty = await pty('console');
    const radioPty = await pty('radio');
    // QEMU binds the socket, then listens: on a loaded machine a connect can fall in
    // between (ECONNREFUSED), or come before the bind (ENOENT). Try again a while.
    for (let attempt = 0; ; attempt++) {
      try {
        control = await new Promise<Socket>((resolve, reject) => {
          const socket = connect(controlSocket, () => resolve(socket));
          socket.once('error', reject);
        });
        break;
      } catch (err) {
        if (attempt >= 200 || child.exitCode !== null) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // A reply is taken as soon as its line is complete (the tests send dozens in a row).
    let replied: (() => void) | undefined;
    control.on('data', (chunk) => {
      controlBuffer += chunk;
      if (controlBuffer.includes('\n')) replied?.();
    });
    control.on('error', () => {});
    // Commands sent before the guest turned echo off would come back as replies.
    await waitFor(/iop-box: control ready/, 90_000);
    return {
      output: () => output,
      waitFor,
      consolePty,
      radioPty,
      async control(command: string, timeoutMs = 10_000) {
        controlBuffer = '';
        control!.write(`${command}\n`);
        if (!controlBuffer.includes('\n')) {
          let timer: NodeJS.Timeout | undefined;
          try {
            await new Promise<void>((resolve, reject) => {
              replied = resolve;
              timer = setTimeout(() => reject(new Error(`no reply to '${command}' on the control channel`)), timeoutMs);
            });
          } finally {
            replied = undefined;
            clearTimeout(timer);
          }
        }
        return controlBuffer.slice(0, controlBuffer.indexOf('\n')).replace(/\r$/, '');
      },
      powerCut: stop,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The guest's port for the host's MQTT broker (forwarded to 10.0.2.100). */
export const GUEST_BROKER_PORT = 1883;

/** Boots the image with the agent publishing to the host broker on `brokerPort`. */
export function bootWithBroker(image: Image, disk: string, dir: string, brokerPort: number, params: Record<string, string> = {}): Promise<EmulatedBox> {
  return bootBox({
    kernel: image.kernel, initrd: image.initrd, disk, dir,
    forwards: [{ guestPort: GUEST_BROKER_PORT, hostPort: brokerPort }],
    params: { iop_broker: `mqtt://10.0.2.100:${GUEST_BROKER_PORT}`, iop_interval: '500', ...params },
  });
}

/** The box's device id, from the agent's start line on the console (from offset `from` on). */
export async function deviceOf(box: EmulatedBox, from = 0): Promise<string> {
  return (await box.waitFor(/info {2}run: device (\S+):/, 90_000, from))[1]!;
}
