// The Debian packages of npm run package, made with dpkg-deb from a fresh build:
// their contents and control data, lintian (Debian's checker) reporting no error, and
// the maintainer scripts run by the real dpkg, adduser and debconf of this machine in a
// throwaway copy of its root (an overlay on tmpfs in a private mount namespace, so
// nothing reaches the real /etc or /var): the user and its groups, the 0700 state dir,
// the device key kept on reinstall, remove and a plain purge, deleted only when purge
// is told so.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, tempDir } from './helpers/cli.ts';
import { hasCommand, testIf } from './helpers/requires.ts';

const run = promisify(execFile);
const dir = tempDir('iop-deb-');
test.after(() => dir.remove());
const version: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
const dist = join(dir.path, 'dist');
const out = join(dir.path, 'out');
const deb = (arch: string) => join(out, `iop-agent_${version}_${arch}.deb`);

let lintian: Promise<{ stdout: string; stderr: string }> | undefined;
const noDpkg = hasCommand('dpkg-deb') ? undefined : 'needs dpkg-deb (a Debian machine)';
const noLintian = noDpkg ?? (hasCommand('lintian') ? undefined : 'needs lintian (apt-get install lintian)');
const noChroot = noDpkg ?? (process.getuid?.() !== 0 ? 'needs root (a private mount namespace with an overlay root)'
  : ['unshare', 'chroot', 'adduser', 'debconf-set-selections'].find((tool) => !hasCommand(tool))?.replace(/^/, 'needs '));

testIf(noDpkg, 'npm run package makes arm64 and amd64 packages with the executable, its addons, unit, conffile and scripts', async () => {
  await run(process.execPath, [join(ROOT, 'images', 'build.ts'), '--out', dist], { timeout: 180_000 });
  // An addon beside the x64 executable, as the serial bindings will ship: it must land
  // in /usr/lib/iop-agent/addons/. The arm64 one has none, which must work too.
  mkdirSync(join(dist, 'iop-agent-linux-x64.d', 'addons'), { recursive: true });
  writeFileSync(join(dist, 'iop-agent-linux-x64.d', 'addons', 'probe.node'), 'not really an addon\n');
  await run(process.execPath, [join(ROOT, 'images', 'package.ts'), '--dist', dist, '--out', out, '--no-archives', '--fast'], { timeout: 180_000 });

  for (const arch of ['arm64', 'amd64']) {
    const info = execFileSync('dpkg-deb', ['-I', deb(arch)]).toString();
    assert.match(info, new RegExp(`^ Architecture: ${arch}$`, 'm'));
    assert.match(info, new RegExp(`^ Version: ${version.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(info, /^ Depends: .*libc6 \(>= 2\.28\).*adduser/m);
    const conffiles = execFileSync('sh', ['-c', 'dpkg-deb --ctrl-tarfile "$1" | tar -xOf - ./conffiles', 'sh', deb(arch)]).toString();
    assert.is(conffiles, '/etc/iop-agent/config.yaml\n');
    const files = execFileSync('dpkg-deb', ['-c', deb(arch)]).toString();
    assert.match(files, /^-rwxr-xr-x root\/root .* \.\/usr\/bin\/iop-agent$/m);
    assert.match(files, / \.\/lib\/systemd\/system\/iop-agent\.service$/m);
    assert.match(files, / \.\/etc\/iop-agent\/config\.yaml$/m);
    assert.match(files, / \.\/lib\/udev\/rules\.d\/60-iop-agent\.rules$/m);
    assert.is(/\.\/usr\/lib\/iop-agent\/addons\/probe\.node$/m.test(files), arch === 'amd64', `addon in the ${arch} package`);
    // The serial bindings' addon always ships (npm run build copies the package's prebuild).
    assert.match(files, / \.\/usr\/lib\/iop-agent\/addons\/serialport\.node$/m, `serial addon in the ${arch} package`);
  }
  // lintian takes most of a minute: it runs while the next test installs the package.
  if (!noLintian) {
    lintian = run('lintian', ['--no-tag-display-limit', deb('arm64')], { timeout: 240_000 })
      .catch((err: { stdout: string; stderr: string }) => err);
  }
});

/** Runs `script` as root in a copy-on-write copy of this machine's root; returns its output. */
async function inThrowawayRoot(script: string): Promise<string> {
  const base = join(dir.path, 'overlay');
  mkdirSync(base, { recursive: true });
  const outer = `set -e
mount -t tmpfs tmpfs "$1"
mkdir "$1/up" "$1/work" "$1/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$1/up,workdir=$1/work" "$1/root"
mount -t proc proc "$1/root/proc"
mount --rbind /dev "$1/root/dev"
cp "$2" "$1/root/tmp/iop-agent.deb"
chroot "$1/root" sh -ec "$3"`;
  const { stdout, stderr } = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', outer, 'sh', base, deb('amd64'), script],
    { timeout: 120_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return stdout + stderr;
}

testIf(noChroot, 'dpkg install, reinstall, remove and purge: user, groups and state dir; the key survives all but a purge told to delete it', async () => {
  const output = await inThrowawayRoot(`
key() { sha256sum /var/lib/iop-agent/device.key | cut -c1-16; }
dpkg -i /tmp/iop-agent.deb >/dev/null
echo "groups=$(id -nG iop-agent)"
echo "state=$(stat -c '%a %U:%G' /var/lib/iop-agent)"
echo "addon=$(ls /usr/lib/iop-agent/addons | tr '\n' ' ')"
echo "version=$(/usr/bin/iop-agent --version)"
if command -v systemd-analyze >/dev/null; then
  echo "unit=$(systemd-analyze verify /lib/systemd/system/iop-agent.service 2>&1 && echo clean)"
else
  echo "unit=clean"
fi
su -s /bin/sh -c 'iop-agent id --state-dir /var/lib/iop-agent >/dev/null' iop-agent
echo "key-made=$(key)"
dpkg -i /tmp/iop-agent.deb >/dev/null
echo "key-reinstall=$(key)"
dpkg -r iop-agent >/dev/null
echo "key-remove=$(key) exe=$(test -e /usr/bin/iop-agent && echo yes || echo no) conffile=$(test -e /etc/iop-agent/config.yaml && echo yes || echo no)"
dpkg -P iop-agent >/dev/null 2>&1
echo "key-purge=$(key) user=$(getent passwd iop-agent >/dev/null && echo yes || echo no)"
dpkg -i /tmp/iop-agent.deb >/dev/null
echo "again=$(stat -c '%U' /var/lib/iop-agent/device.key) $(key)"
echo 'iop-agent iop-agent/purge-state boolean true' | debconf-set-selections
dpkg -P iop-agent >/dev/null 2>&1
echo "told=$(test -e /var/lib/iop-agent && echo kept || echo deleted) user=$(getent passwd iop-agent >/dev/null && echo yes || echo no)"
`);
  const field = (name: string): string => {
    const match = new RegExp(`^${name}=(.*)$`, 'm').exec(output);
    if (match?.[1] === undefined) throw new Error(`${name} missing in:\n${output}`);
    return match[1];
  };
  assert.match(field('groups'), /\bdialout\b/);
  assert.match(field('groups'), /\bgpio\b/);
  assert.is(field('state'), '700 iop-agent:iop-agent');
  // Every addon beside the executable is installed (serialport.node, epoll.node when built, and the probe).
  assert.ok(field('addon').split(/\s+/).includes('probe.node'), field('addon'));
  assert.is(field('version'), `iop-agent ${version}`);
  assert.is(field('unit'), 'clean', 'systemd-analyze verify of the installed unit');
  const key = field('key-made');
  assert.match(key, /^[0-9a-f]{16}$/);
  assert.is(field('key-reinstall'), key);
  assert.is(field('key-remove'), `${key} exe=no conffile=yes`);
  assert.is(field('key-purge'), `${key} user=no`);
  assert.is(field('again'), `iop-agent ${key}`);
  assert.is(field('told'), 'deleted user=no');
});

testIf(noLintian, 'lintian reports no error for the arm64 package', async () => {
  if (!lintian) throw new Error('no package to check: the build test failed');
  const result = await lintian;
  const output = `${result.stdout}${result.stderr}`;
  assert.not.match(output, /^E: /m, output);
});

test.run();
