// gpio-sim for Debian's arm64 kernel, which does not build it (nor irq_sim): an
// out-of-tree module from Debian's own kernel sources (linux-source-6.1), built against
// the matching linux-headers with the aarch64 cross compiler. irq_sim.c is bundled into
// the module; its one call to irq_to_desc(), not exported to modules, becomes
// generic_handle_irq_safe(), which does the same for a simulated interrupt. The .ko is
// cached per kernel version.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DebianArchive, HOST_ARCH } from './debian.ts';

export const CROSS_COMPILER = 'aarch64-linux-gnu-gcc-12';
const SOURCES = ['drivers/gpio/gpio-sim.c', 'drivers/gpio/gpiolib.h', 'kernel/irq/irq_sim.c'];

/** Why gpio-sim cannot be built here, or undefined. */
export function gpioSimMissing(): string | undefined {
  for (const tool of [CROSS_COMPILER, 'aarch64-linux-gnu-strip', 'make', 'tar', 'xz']) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' });
    } catch {
      return `${tool} not found (apt-get install gcc-12-aarch64-linux-gnu make xz-utils)`;
    }
  }
  return undefined;
}

/** Builds (once per kernel) gpio-sim.ko for `kernelVersion` (e.g. 6.1.0-57-arm64); returns its path. */
export function buildGpioSim(archive: DebianArchive, cache: string, kernelVersion: string): string {
  const dir = join(cache, `gpio-sim-${kernelVersion}`);
  const ko = join(dir, 'gpio-sim.ko');
  if (existsSync(ko)) return ko;
  const series = /^(\d+\.\d+)/.exec(kernelVersion)?.[1];
  const flavour = kernelVersion.replace(/-arm64$/, '');
  const headers = archive.unpack(`linux-headers-${kernelVersion}`);
  const common = archive.unpack(`linux-headers-${flavour}-common`);
  // The build tools (fixdep, modpost) run on this machine: the host's architecture.
  const kbuild = archive.unpack(`linux-kbuild-${series}`, HOST_ARCH);
  const source = archive.download(`linux-source-${series}`);

  const work = join(cache, `.gpio-sim-build-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    // The headers package points at the common headers and the kbuild tools by absolute
    // and relative paths into /usr; a private tree with both puts them where it looks.
    const tree = join(work, 'tree');
    for (const unpacked of [headers, common, kbuild]) execFileSync('cp', ['-a', `${unpacked}/.`, tree + '/']);
    const headersDir = join(tree, 'usr', 'src', `linux-headers-${kernelVersion}`);
    writeFileSync(join(headersDir, 'Makefile'), `include ${join(tree, 'usr', 'src', `linux-headers-${flavour}-common`, 'Makefile')}\n`);

    const tarball = `./usr/src/linux-source-${series}.tar.xz`;
    const members = SOURCES.map((file) => `linux-source-${series}/${file}`);
    const extract = 'deb=$1 ball=$2 out=$3; shift 3; dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "$ball" | xz -dc | tar -xf - -C "$out" "$@"';
    execFileSync('sh', ['-c', extract, 'sh', source, tarball, work, ...members], { stdio: 'pipe' });
    const module = join(work, 'module');
    mkdirSync(module);
    const from = (file: string) => join(work, `linux-source-${series}`, file);
    copyFileSync(from('drivers/gpio/gpio-sim.c'), join(module, 'gpio-sim-main.c'));
    copyFileSync(from('drivers/gpio/gpiolib.h'), join(module, 'gpiolib.h'));
    const irqSim = readFileSync(from('kernel/irq/irq_sim.c'), 'utf8');
    const patched = irqSim.replace('handle_simple_irq(irq_to_desc(irqnum));', 'generic_handle_irq_safe(irqnum);');
    if (patched === irqSim) throw new Error('irq_sim.c changed: its handle_simple_irq(irq_to_desc(irqnum)) call is gone');
    writeFileSync(join(module, 'irq_sim.c'), patched);
    writeFileSync(join(module, 'Kbuild'), 'obj-m += gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n');
    execFileSync('make', ['-s', '-C', headersDir, `M=${module}`, 'ARCH=arm64', 'CROSS_COMPILE=aarch64-linux-gnu-', 'modules'], { stdio: 'pipe' });
    mkdirSync(dir, { recursive: true });
    execFileSync('aarch64-linux-gnu-strip', ['--strip-debug', '-o', `${ko}.partial`, join(module, 'gpio-sim.ko')]);
    execFileSync('mv', [`${ko}.partial`, ko]);
    return ko;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
