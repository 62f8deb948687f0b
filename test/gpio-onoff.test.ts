// onoff's sysfs path on a fixture tree. onoff always uses /sys/class/gpio, so the test
// runs a child in a private mount namespace (root, unshare) with the fixture mounted
// there: a kernel-6.6 layout (chip base 512) where gpiochip0 line 17 is gpio529. Also:
// the epoll addon loads from the single executable's addon layout, and the arm64 build
// is an aarch64 object. Edges need a real kernel: they move to gpio-sim in QEMU.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixtureSysfs } from './helpers/fixture-sysfs.ts';
import { hasCommand } from './helpers/pty-pair.ts';

const root = join(import.meta.dirname, '..');
const addon = (target: string) => join(root, 'build', 'addons', target, 'epoll.node');
const dir = mkdtempSync(join(tmpdir(), 'iop-onoff-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function missing(): string | undefined {
  if (!existsSync(addon('linux-x64'))) return 'needs the epoll addon: npm run build:addons';
  if (process.getuid?.() !== 0 || !hasCommand('unshare')) return 'needs root and unshare (a private mount namespace)';
  return undefined;
}

test('onoff on a fixture /sys/class/gpio: chip base 512 translated, level read, direction set', () => {
  const why = missing();
  if (why) return console.log(`skip: ${why}`);
  const fixture = new FixtureSysfs(join(dir, 'tree'));
  fixture.gpioChip(512, 'pinctrl-bcm2711', 58, 'gpiochip0');
  // gpio529 already exported (onoff then configures it rather than waiting for udev).
  for (const [file, text] of [['value', '1\n'], ['direction', 'out\n'], ['edge', 'none\n'], ['active_low', '0\n']]) {
    fixture.file(`sys/class/gpio/gpio529/${file}`, text!);
  }
  const child = join(import.meta.dirname, 'fixtures', 'onoff-child.ts');
  const script = `mount -t tmpfs none /sys/class && mkdir /sys/class/gpio && mount --bind "$1" /sys/class/gpio && exec "$2" "$3"`;
  const run = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', join(fixture.root, 'sys/class/gpio'), process.execPath, child], { encoding: 'utf8', timeout: 60_000 });
  assert.is(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout.trim().split('\n').pop()!);
  assert.is(result.backend, 'sysfs');
  assert.match(result.reason, /sysfs GPIO and onoff loaded/);
  assert.is(result.closed, true);
  assert.is(result.open, false);
  assert.is(result.direction.trim(), 'in');
  assert.match(result.missingChip, /gpiochip7 line 1: no such GPIO chip \(chips: gpiochip0 \(pinctrl-bcm2711, base 512\)\)/);
});

test('epoll addon: found in the executable\'s addon layout first; the arm64 build is aarch64', () => {
  if (!existsSync(addon('linux-x64'))) return console.log('skip: needs the epoll addon: npm run build:addons');
  const shipped = join(dir, 'iop-agent.d', 'addons');
  mkdirSync(shipped, { recursive: true });
  copyFileSync(addon('linux-x64'), join(shipped, 'epoll.node'));
  const probe = `import { findEpollAddon, loadEpollAddon } from './drivers/gpio/epoll-addon.ts';
    const found = findEpollAddon(); const { Epoll } = loadEpollAddon();
    console.log(JSON.stringify({ path: found.path, epoll: typeof Epoll }));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: root, encoding: 'utf8', env: { ...process.env, IOP_AGENT_ADDONS: shipped } });
  assert.is(run.status, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout), { path: join(shipped, 'epoll.node'), epoll: 'function' });
  if (existsSync(addon('linux-arm64'))) {
    const elf = readFileSync(addon('linux-arm64'));
    assert.is(elf.readUInt16LE(18), 183, 'e_machine EM_AARCH64');
  }
});

test('in a bundle like the single executable, onoff comes along and epoll loads from <exe>.d/addons', async () => {
  if (!existsSync(addon('linux-x64'))) return console.log('skip: needs the epoll addon: npm run build:addons');
  const { build } = await import('esbuild');
  const bundle = join(dir, 'bundle', 'iop-agent.cjs');
  await build({
    entryPoints: [join(import.meta.dirname, 'fixtures', 'onoff-bundle-entry.ts')],
    outfile: bundle, bundle: true, platform: 'node', format: 'cjs', target: 'node26', logLevel: 'silent',
  });
  const shipped = join(dir, 'bundle-addons');
  mkdirSync(shipped, { recursive: true });
  const run = (env: Record<string, string>) => JSON.parse(spawnSync(process.execPath, [bundle], { encoding: 'utf8', env: { ...process.env, ...env } }).stdout);
  assert.match(run({ IOP_AGENT_ADDONS: shipped }).error, /native addon epoll\.node not found \(looked in .*bundle-addons/);
  copyFileSync(addon('linux-x64'), join(shipped, 'epoll.node'));
  assert.equal(run({ IOP_AGENT_ADDONS: shipped }), { gpio: 'function' });
});

test.run();
