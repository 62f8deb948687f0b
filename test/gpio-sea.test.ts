// The single executable reads a GPIO line through onoff, whose epoll addon it loads from
// <executable>.d/addons/epoll.node (drivers/native/addons.ts), on a fixture
// /sys/class/gpio in a private mount namespace (root, unshare): the x64 executable, and
// the arm64 one under qemu-aarch64-static with the cross-built addon.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, jsonLines, runCli } from './helpers/cli.ts';
import { FixtureSysfs } from './helpers/fixture-sysfs.ts';
import { hasCommand } from './helpers/pty-pair.ts';

const dir = mkdtempSync(join(tmpdir(), 'iop-gpio-sea-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const SYSROOT = process.env.QEMU_LD_PREFIX ?? '/usr/aarch64-linux-gnu';

function missing(target: string): string | undefined {
  if (process.getuid?.() !== 0 || !hasCommand('unshare')) return 'needs root and unshare (a private mount namespace)';
  if (!hasCommand('g++') || !hasCommand('make')) return 'needs g++ and make to build the epoll addon';
  if (target === 'linux-arm64' && !(hasCommand('aarch64-linux-gnu-g++') && hasCommand('qemu-aarch64-static') && existsSync(SYSROOT))) {
    return 'needs g++-aarch64-linux-gnu, qemu-user-static and the arm64 cross libraries';
  }
  return undefined;
}

/** Builds the executable and its addons for `target`, samples a door contact on a fixture tree, returns the verified records. */
async function doorThroughExecutable(target: 'linux-x64' | 'linux-arm64'): Promise<[string, boolean][]> {
  const out = join(dir, target);
  execFileSync(process.execPath, [join(ROOT, 'images', 'build.ts'), '--target', target, '--out', out, '--no-strip'], { stdio: 'pipe' });
  execFileSync(process.execPath, [join(ROOT, 'images', 'addons.ts'), '--target', target, '--dist', out], { stdio: 'pipe' });
  const executable = join(out, `iop-agent-${target}`);
  assert.ok(existsSync(join(out, `iop-agent-${target}.d`, 'addons', 'epoll.node')));

  const fixture = new FixtureSysfs(join(dir, `${target}-tree`));
  fixture.gpioChip(512, 'pinctrl-bcm2711', 58, 'gpiochip0');
  for (const [file, text] of [['value', '0\n'], ['direction', 'in\n'], ['edge', 'none\n'], ['active_low', '0\n']]) {
    fixture.file(`sys/class/gpio/gpio529/${file}`, text!);
  }
  const config = join(dir, `${target}.json`);
  writeFileSync(config, JSON.stringify({
    stateDir: join(dir, `${target}-state`),
    hardware: { gpio: 'sysfs' },
    sensors: [{ type: 'gpio-input', name: 'door', chip: 'gpiochip0', line: 17, activeLow: true }],
  }));
  const readings = join(dir, `${target}.cbor`);
  const command = target === 'linux-arm64' ? `qemu-aarch64-static -L "${SYSROOT}" "$2"` : '"$2"';
  const script = `mount -t tmpfs none /sys/class && mkdir /sys/class/gpio && mount --bind "$1" /sys/class/gpio && exec ${command} sample --count 1 --out "$3" --config "$4"`;
  const run = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', join(fixture.root, 'sys/class/gpio'), executable, readings, config],
    { encoding: 'utf8', timeout: 120_000, env: { ...process.env, IOP_AGENT_CONFIG: '' } });
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stderr, /GPIO through sysfs: sysfs chosen in hardware\.gpio/);
  const verify = await runCli(['verify', readings]);
  assert.is(verify.code, 0, verify.stderr);
  const [line] = jsonLines(verify.stdout) as { records: { n: string; vb: boolean }[] }[];
  return line!.records.map((r) => [r.n, r.vb]);
}

test('iop-agent-linux-x64 samples a door contact through onoff with the shipped epoll.node', async () => {
  const why = missing('linux-x64');
  if (why) return console.log(`skip: ${why}`);
  assert.equal(await doorThroughExecutable('linux-x64'), [['door', true]]);
});

test('iop-agent-linux-arm64 under qemu does the same with the cross-built epoll.node', async () => {
  const why = missing('linux-arm64');
  if (why) return console.log(`skip: ${why}`);
  assert.equal(await doorThroughExecutable('linux-arm64'), [['door', true]]);
});

test.run();
