// npm run image: the arm64 single executable, its addons and the emulated box's image
// around them (images/emulated-box/build.ts), rebuilt only when something they are made
// from changed. The executable's sources are digested (agent, drivers, mesh, sensors,
// images, package.json, package-lock.json) into a stamp beside it: an unchanged checkout
// skips the esbuild bundle and the SEA injection, and buildImage skips an unchanged
// initramfs, so a second run takes seconds. The emulated-box tests call it too.
//
// Usage: node images/image.ts [--dist DIR] [--out DIR] [--cache DIR]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildImage, type Image } from './emulated-box/build.ts';

const root = join(import.meta.dirname, '..');

export class ExecutableBuildError extends Error {}

/** Builds (or finds up to date) `dist`'s arm64 executable and addons, then the image in `out`. */
export async function buildArm64Image(options: { dist: string; out: string; cache: string }): Promise<Image> {
  const sources = sourcesDigest();
  const stamp = join(options.dist, 'iop-agent-linux-arm64.sources');
  const executable = join(options.dist, 'iop-agent-linux-arm64');
  if (!existsSync(executable) || !existsSync(stamp) || readFileSync(stamp, 'utf8') !== sources) {
    rmSync(stamp, { force: true });
    try {
      execFileSync(process.execPath, [join(root, 'images', 'build.ts'), '--target', 'linux-arm64', '--out', options.dist], { stdio: 'pipe' });
    } catch (err) {
      throw new ExecutableBuildError(`cannot build the arm64 executable: ${(err as Error).message.split('\n')[0]}`);
    }
    // The addons (onoff's epoll) need the cross compiler; without them the image has none.
    try {
      execFileSync(process.execPath, [join(root, 'images', 'addons.ts'), '--target', 'linux-arm64', '--dist', options.dist], { stdio: 'pipe' });
    } catch {
      // the image is built without addons
    }
    writeFileSync(stamp, sources);
  }
  return buildImage(options);
}

/** What the executable is built from: the sources, the build scripts, the locked dependencies (not the docs beside them). */
function sourcesDigest(): string {
  const hash = createHash('sha256');
  const files = ['agent', 'drivers', 'mesh', 'sensors', 'images']
    .flatMap((top) => readdirSync(join(root, top), { recursive: true, withFileTypes: true })
      // Documentation is not built from: editing a README must not rebuild (25-40 s).
      .filter((entry) => entry.isFile() && !entry.name.endsWith('.md')).map((entry) => join(entry.parentPath, entry.name)))
    .concat([join(root, 'package.json'), join(root, 'package-lock.json')])
    .sort();
  for (const file of files) hash.update(file).update(readFileSync(file));
  return hash.digest('hex');
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { dist: { type: 'string' }, out: { type: 'string' }, cache: { type: 'string' } } });
  const dist = resolve(values.dist ?? join(root, 'dist'));
  const image = await buildArm64Image({ dist, out: resolve(values.out ?? join(dist, 'image-arm64')), cache: resolve(values.cache ?? join(root, '.cache', 'emulated-box')) });
  console.log(`${image.kernel} (Debian ${image.kernelVersion}) and ${image.initrd} (${(statSync(image.initrd).size / 1e6).toFixed(1)} MB), addons: ${image.addons.join(', ') || 'none'}`);
  if (image.noGpioSim) console.log(`without gpio-sim: ${image.noGpioSim}`);
}
