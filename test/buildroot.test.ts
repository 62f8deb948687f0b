// The Buildroot external tree (buildroot/) against a real Buildroot source tree: its
// defconfigs configure, the package is selected, and Buildroot's own linter
// (utils/check-package) finds nothing. A full image build needs the internet and is not
// run here. BUILDROOT_DIR names the Buildroot tree; by default the vendored 2026.02.3.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, tempDir } from './helpers/cli.ts';
import { hasCommand, testIf } from './helpers/requires.ts';

const run = promisify(execFile);
const EXTERNAL = join(ROOT, 'buildroot');
// shared/ lies beside the checkout (CI puts its copy there too).
const BUILDROOT = process.env.BUILDROOT_DIR ?? join(ROOT, '..', 'shared', 'vendor', 'buildroot-2026.02.3');
const noBuildroot = existsSync(join(BUILDROOT, 'Makefile')) && existsSync(join(BUILDROOT, 'utils', 'check-package'))
  ? undefined
  : `needs a Buildroot source tree at ${BUILDROOT} (set BUILDROOT_DIR)`;

// check-package imports python-magic and runs flake8 and shellcheck; Debian's
// python3-magic is for the system python.
const PYTHON = '/usr/bin/python3';
function checkPackageMissing(): string | undefined {
  if (noBuildroot) return noBuildroot;
  const tools = ['shellcheck', 'flake8'].filter((tool) => !hasCommand(tool));
  if (tools.length > 0) return `needs ${tools.join(' and ')} (apt-get install shellcheck flake8)`;
  try {
    execFileSync(PYTHON, ['-c', 'import magic'], { stdio: 'ignore' });
  } catch {
    return `needs python-magic for ${PYTHON} (apt-get install python3-magic)`;
  }
  return undefined;
}

const dir = tempDir('iop-buildroot-');
test.after(() => dir.remove());

function filesUnder(path: string): string[] {
  return readdirSync(path, { withFileTypes: true }).flatMap((entry) => {
    const full = join(path, entry.name);
    return entry.isDirectory() ? filesUnder(full) : [full];
  });
}

for (const defconfig of ['qemu_aarch64_virt_iop_defconfig', 'raspberrypi4_64_iop_defconfig']) {
  testIf(noBuildroot, `${defconfig} configures with the external tree and selects iop-agent`, async () => {
    const out = join(dir.path, defconfig);
    await run('make', ['-s', '-C', BUILDROOT, `O=${out}`, `BR2_EXTERNAL=${EXTERNAL}`, defconfig], { timeout: 120_000 });
    const config = readFileSync(join(out, '.config'), 'utf8');
    assert.match(config, /^BR2_PACKAGE_IOP_AGENT=y$/m);
    assert.match(config, /^BR2_EXTERNAL_IOP_AGENT_PATH=/m);
    // The agent's dependencies hold, or Kconfig would have dropped the package.
    assert.match(config, /^BR2_TOOLCHAIN_USES_GLIBC=y$/m);
    assert.match(config, /^BR2_aarch64=y$/m);
  });
}

testIf(noBuildroot, 'the package evaluates: local dist/ source, the arm64 executable, mode 0755 at rootfs time, the user in dialout and gpio', async () => {
  const out = join(dir.path, 'qemu_aarch64_virt_iop_defconfig');
  if (!existsSync(join(out, '.config'))) {
    await run('make', ['-s', '-C', BUILDROOT, `O=${out}`, `BR2_EXTERNAL=${EXTERNAL}`, 'qemu_aarch64_virt_iop_defconfig'], { timeout: 120_000 });
  }
  const { stdout } = await run('make', ['-s', '-C', BUILDROOT, `O=${out}`, 'printvars',
    'VARS=IOP_AGENT_SITE IOP_AGENT_SITE_METHOD IOP_AGENT_EXECUTABLE IOP_AGENT_PERMISSIONS IOP_AGENT_USERS'], { timeout: 180_000 });
  const vars = Object.fromEntries(stdout.split('\n').filter((line) => line.includes('=')).map((line) => {
    const at = line.indexOf('=');
    return [line.slice(0, at), line.slice(at + 1).trim()];
  }));
  assert.is(vars.IOP_AGENT_SITE, `${EXTERNAL}/../dist`);
  assert.is(vars.IOP_AGENT_SITE_METHOD, 'local');
  assert.is(vars.IOP_AGENT_EXECUTABLE, 'iop-agent-linux-arm64');
  assert.is(vars.IOP_AGENT_PERMISSIONS, '/usr/bin/iop-agent f 755 0 0 - - - - -');
  assert.match(vars.IOP_AGENT_USERS ?? '', /^iop-agent -1 iop-agent -1 \* \/var\/lib\/iop-agent - dialout,gpio /);
});

testIf(noBuildroot, 'the defconfigs keep every line of the Buildroot board defconfig they are based on', () => {
  const pairs: [string, string][] = [['qemu_aarch64_virt_iop_defconfig', 'qemu_aarch64_virt_defconfig'], ['raspberrypi4_64_iop_defconfig', 'raspberrypi4_64_defconfig']];
  for (const [ours, base] of pairs) {
    const lines = new Set(readFileSync(join(EXTERNAL, 'configs', ours), 'utf8').split('\n'));
    const missing = readFileSync(join(BUILDROOT, 'configs', base), 'utf8').split('\n')
      .filter((line) => line !== '' && !line.startsWith('BR2_TARGET_ROOTFS_EXT2_SIZE=') && !lines.has(line));
    assert.equal(missing, [], `${ours} drops lines of ${base}`);
  }
});

testIf(checkPackageMissing(), 'utils/check-package reports nothing for any file of the tree', async () => {
  const files = filesUnder(EXTERNAL).filter((file) => statSync(file).isFile());
  assert.ok(files.some((file) => file.endsWith('iop-agent.mk')));
  const result = await run(PYTHON, [join(BUILDROOT, 'utils', 'check-package'), '-b', ...files], { cwd: BUILDROOT, timeout: 120_000 })
    .catch((err: { stdout: string; stderr: string }) => err);
  const output = `${result.stdout}${result.stderr}`;
  assert.match(output, /\b0 warnings generated/, output);
  assert.match(output, /[1-9]\d* lines processed/, output);
});

test.run();
