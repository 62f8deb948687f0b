// The single executable reads a GPIO line through onoff, whose epoll addon it loads from
// <executable>.d/addons/epoll.node (drivers/native/addons.ts), on a fixture
// /sys/class/gpio in a private mount namespace (root, unshare). Builds the x64 executable.
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

test('iop-agent-linux-x64 samples a door contact through onoff with the shipped epoll.node', () => {
  if (process.getuid?.() !== 0 || !hasCommand('unshare')) return console.log('skip: needs root and unshare (a private mount namespace)');
  if (!hasCommand('g++') || !hasCommand('make')) return console.log('skip: needs g++ and make to build the epoll addon');
  const out = join(dir, 'dist');
  execFileSync(process.execPath, [join(ROOT, 'images', 'build.ts'), '--target', 'linux-x64', '--out', out, '--no-strip'], { stdio: 'pipe' });
  execFileSync(process.execPath, [join(ROOT, 'images', 'addons.ts'), '--target', 'linux-x64', '--dist', out], { stdio: 'pipe' });
  const executable = join(out, 'iop-agent-linux-x64');
  assert.ok(existsSync(join(out, 'iop-agent-linux-x64.d', 'addons', 'epoll.node')));

  const fixture = new FixtureSysfs(join(dir, 'tree'));
  fixture.gpioChip(512, 'pinctrl-bcm2711', 58, 'gpiochip0');
  for (const [file, text] of [['value', '0\n'], ['direction', 'in\n'], ['edge', 'none\n'], ['active_low', '0\n']]) {
    fixture.file(`sys/class/gpio/gpio529/${file}`, text!);
  }
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    stateDir: join(dir, 'state'),
    hardware: { gpio: 'sysfs' },
    sensors: [{ type: 'gpio-input', name: 'door', chip: 'gpiochip0', line: 17, activeLow: true }],
  }));
  const readings = join(dir, 'door.cbor');
  const script = `mount -t tmpfs none /sys/class && mkdir /sys/class/gpio && mount --bind "$1" /sys/class/gpio && exec "$2" sample --count 1 --out "$3" --config "$4"`;
  const run = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', join(fixture.root, 'sys/class/gpio'), executable, readings, config],
    { encoding: 'utf8', timeout: 60_000, env: { ...process.env, IOP_AGENT_CONFIG: '' } });
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stderr, /GPIO through sysfs: sysfs chosen in hardware\.gpio/);
  return runCli(['verify', readings]).then((verify) => {
    assert.is(verify.code, 0, verify.stderr);
    const [line] = jsonLines(verify.stdout) as { records: { n: string; vb: boolean }[] }[];
    assert.equal(line!.records.map((r) => [r.n, r.vb]), [['door', true]]);
  });
});

test.run();
