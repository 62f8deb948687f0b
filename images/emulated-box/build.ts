// npm run image: the emulated arm64 box in dist/image-arm64/: Debian's arm64 kernel
// (vmlinuz) and an uncompressed initramfs (initrd.cpio) holding BusyBox, the arm64 single executable
// and its addons, the arm64 libraries it links, the kernel modules for virtio, ext4 and
// configfs, and the init script and config of the Buildroot tree. Downloads and
// unpacked packages are cached in .cache/emulated-box; an unchanged image is not rebuilt.
//
// Usage: node images/emulated-box/build.ts [--dist DIR] [--out DIR] [--cache DIR]
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeInitramfs, type Entry } from './cpio.ts';
import { DebianArchive } from './debian.ts';
import { addonsOf } from '../deb.ts';
import { buildGpioSim, gpioSimMissing } from './gpio-sim.ts';

const root = join(import.meta.dirname, '..', '..');
const BUILDROOT_PACKAGE = join(root, 'buildroot', 'package', 'iop-agent');
// gpiod: libgpiod's tools, the agent's character-device GPIO path.
const LIBRARIES = ['libc6', 'libstdc++6', 'libgcc-s1', 'libatomic1', 'gpiod', 'libgpiod2'];
/** Modules the box loads, in this order after their dependencies. */
const MODULES = ['virtio_mmio', 'virtio_net', 'virtio_blk', 'virtio_console', 'virtio_rng', 'crc32c_generic', 'ext4', 'configfs'];
/** uid/gid of the agent's user and the device groups, as a Buildroot image makes them. */
export const IDS = { agent: 999, dialout: 20, gpio: 997 };

export interface ImageOptions { dist: string; out: string; cache: string }
export interface Image {
  kernel: string;
  initrd: string;
  kernelVersion: string;
  /** Why the image has no gpio-sim module, or undefined when it has one. */
  noGpioSim?: string;
  /** The native addons in the image (file names). */
  addons: string[];
}

export async function buildImage(options: ImageOptions): Promise<Image> {
  const executable = join(options.dist, 'iop-agent-linux-arm64');
  if (!existsSync(executable)) throw new Error(`${executable} not found: run npm run build first`);
  const archive = new DebianArchive(options.cache);
  const kernel = kernelFrom(archive);
  const noGpioSim = gpioSimMissing();
  if (!noGpioSim) kernel.modules.push(buildGpioSim(archive, options.cache, kernel.version));
  const busybox = archive.unpack('busybox-static');
  const libraries = LIBRARIES.map((name) => archive.unpack(name));
  // By content: npm run build rewrites the executable each time, mostly unchanged.
  const inputFiles = [join(import.meta.dirname, 'init.sh'), join(import.meta.dirname, 'build.ts'), join(import.meta.dirname, 'cpio.ts'),
    join(BUILDROOT_PACKAGE, 'S95iop-agent'), join(BUILDROOT_PACKAGE, 'config.yaml'), executable, ...addonsOf(executable), ...kernel.modules];
  const hash = createHash('sha256').update(JSON.stringify([kernel.version, busybox, libraries]));
  for (const file of inputFiles) hash.update(file).update(readFileSync(file));
  const inputs = hash.digest('hex');

  mkdirSync(options.out, { recursive: true });
  const image: Image = { kernel: join(options.out, 'vmlinuz'), initrd: join(options.out, 'initrd.cpio'), kernelVersion: kernel.version,
    addons: addonsOf(executable).map((addon) => basename(addon)), ...(noGpioSim ? { noGpioSim } : {}) };
  const manifest = join(options.out, 'manifest.json');
  if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).inputs === inputs && existsSync(image.initrd)) return image;

  const entries: Entry[] = [
    ...['bin', 'sbin', 'dev', 'etc', 'etc/init.d', 'etc/default', 'etc/iop-agent', 'lib', 'lib/modules', 'proc', 'sys', 'tmp', 'run',
      'root', 'usr', 'usr/bin', 'usr/lib', 'usr/lib/iop-agent', 'usr/lib/iop-agent/addons', 'var', 'var/lib', 'var/log']
      .map((path): Entry => ({ kind: 'dir', path, mode: path === 'tmp' ? 0o1777 : 0o755 })),
    { kind: 'char', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
    { kind: 'char', path: 'dev/null', mode: 0o666, major: 1, minor: 3 },
    { kind: 'file', path: 'bin/busybox', mode: 0o755, source: join(busybox, 'bin', 'busybox') },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'file', path: 'init', mode: 0o755, source: join(import.meta.dirname, 'init.sh') },
    { kind: 'data', path: 'etc/passwd', mode: 0o644,
      data: `root:x:0:0:root:/root:/bin/sh\niop-agent:x:${IDS.agent}:${IDS.agent}:iop-agent:/var/lib/iop-agent:/bin/false\n` },
    { kind: 'data', path: 'etc/group', mode: 0o644,
      data: `root:x:0:\ndialout:x:${IDS.dialout}:iop-agent\ngpio:x:${IDS.gpio}:iop-agent\niop-agent:x:${IDS.agent}:\n` },
    { kind: 'file', path: 'etc/init.d/S95iop-agent', mode: 0o755, source: join(BUILDROOT_PACKAGE, 'S95iop-agent') },
    { kind: 'file', path: 'etc/iop-agent/config.yaml', mode: 0o644, source: join(BUILDROOT_PACKAGE, 'config.yaml') },
    { kind: 'file', path: 'usr/bin/iop-agent', mode: 0o755, source: executable },
    ...addonsOf(executable).map((addon): Entry => ({ kind: 'file', path: `usr/lib/iop-agent/addons/${basename(addon)}`, mode: 0o644, source: addon })),
    ...kernel.modules.map((module): Entry => ({ kind: 'file', path: `lib/modules/${basename(module)}`, mode: 0o644, source: module })),
    { kind: 'data', path: 'lib/modules/load-order', mode: 0o644, data: kernel.modules.map((m) => `${basename(m)}\n`).join('') },
    ...libraries.flatMap((dir) => treeEntries(dir)),
  ];
  const partial = `${image.initrd}.partial`;
  await writeInitramfs(partial, dedupe(entries));
  // By rename: a QEMU another test file started reads the old files whole.
  renameSync(partial, image.initrd);
  rmSync(join(options.out, 'initrd.gz'), { force: true }); // the compressed one earlier builds made
  copyFileSync(kernel.vmlinuz, `${image.kernel}.partial`);
  renameSync(`${image.kernel}.partial`, image.kernel);
  writeFileSync(manifest, JSON.stringify({ inputs, kernelVersion: kernel.version, modules: kernel.modules.map((m) => basename(m)) }, null, 2));
  return image;
}

interface Kernel { version: string; vmlinuz: string; modules: string[] }

function kernelFrom(archive: DebianArchive): Kernel {
  archive.update();
  const name = archive.resolveKernel();
  const dir = archive.unpack(name);
  const version = readdirSync(join(dir, 'lib', 'modules'))[0]!;
  const byName = new Map<string, string>();
  for (const file of walk(join(dir, 'lib', 'modules', version, 'kernel'))) {
    if (file.endsWith('.ko')) byName.set(basename(file, '.ko').replace(/-/g, '_'), file);
  }
  const ordered: string[] = [];
  const visit = (module: string) => {
    const file = byName.get(module);
    if (!file) throw new Error(`kernel ${version} has no module ${module} (built in?)`);
    if (ordered.includes(file)) return;
    for (const dep of moduleDepends(file)) visit(dep);
    ordered.push(file);
  };
  for (const module of MODULES) visit(module);
  return { version, vmlinuz: join(dir, 'boot', `vmlinuz-${version}`), modules: ordered };
}

/** The `depends=` field of a module's .modinfo section. */
function moduleDepends(file: string): string[] {
  const text = readFileSync(file).toString('latin1');
  const match = /\0depends=([^\0]*)\0/.exec(text);
  return match?.[1] ? match[1].split(',').filter(Boolean).map((m) => m.replace(/-/g, '_')) : [];
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** The files of an unpacked library package, without documentation and locale data. */
function treeEntries(dir: string): Entry[] {
  const entries: Entry[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const full = join(entry.parentPath, entry.name);
    const path = relative(dir, full);
    if (path.startsWith('usr/share') || path.includes('/gconv') || path === '.done' || path.startsWith('etc') || path.includes('/audit')) continue;
    if (entry.isDirectory()) entries.push({ kind: 'dir', path, mode: 0o755 });
    else if (entry.isSymbolicLink()) entries.push({ kind: 'symlink', path, target: readlinkSync(full) });
    else if (entry.isFile()) entries.push({ kind: 'file', path, mode: statSync(full).mode & 0o777, source: full });
  }
  return entries.sort((a, b) => a.path.localeCompare(b.path));
}

/** Directories listed twice (several packages own lib/) are written once; parents come first. */
function dedupe(entries: Entry[]): Entry[] {
  const seen = new Set<string>();
  return entries.filter((entry) => {
    const key = entry.path.replace(/^\/+/, '');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { dist: { type: 'string' }, out: { type: 'string' }, cache: { type: 'string' } } });
  const dist = resolve(values.dist ?? join(root, 'dist'));
  const image = await buildImage({ dist, out: resolve(values.out ?? join(dist, 'image-arm64')), cache: resolve(values.cache ?? join(root, '.cache', 'emulated-box')) });
  console.log(`built ${image.kernel} (Debian ${image.kernelVersion}) and ${image.initrd} (${(statSync(image.initrd).size / 1e6).toFixed(1)} MB)`);
  if (image.noGpioSim) console.log(`without gpio-sim: ${image.noGpioSim}`);
}
