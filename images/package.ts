// npm run package: from npm run build's executables, the Debian packages
// dist/iop-agent_<version>_{arm64,amd64}.deb and the release archives
// dist/iop-agent-<version>-linux-<arch>.tar.gz (the executable and its addons, what the
// Buildroot package downloads).
//
// Usage: node images/package.ts [--dist DIR] [--out DIR] [--arch arm64|amd64 ...] [--no-archives] [--fast]
// --fast: gzip -1 (for tests: a third of the time, 10% larger)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildDeb, DEB_ARCHES, type DebArch } from './deb.ts';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({ options: { dist: { type: 'string' }, out: { type: 'string' }, arch: { type: 'string', multiple: true }, 'no-archives': { type: 'boolean' }, fast: { type: 'boolean' } } });
const dist = resolve(values.dist ?? join(root, 'dist'));
const out = resolve(values.out ?? dist);
const arches = (values.arch ?? Object.keys(DEB_ARCHES)) as DebArch[];
for (const arch of arches) if (!(arch in DEB_ARCHES)) throw new Error(`unknown architecture ${arch}; known: ${Object.keys(DEB_ARCHES).join(', ')}`);
const version: string = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

const work = mkdtempSync(join(tmpdir(), 'iop-package-'));
try {
  for (const arch of arches) {
    console.log(`built ${buildDeb({ dist, out, arch, version, work, ...(values.fast ? { level: 1 } : {}) })}`);
    if (values['no-archives']) continue;
    const target = DEB_ARCHES[arch];
    const archive = join(out, `iop-agent-${version}-${target}.tar.gz`);
    const members = [`iop-agent-${target}`, ...(existsSync(join(dist, `iop-agent-${target}.d`)) ? [`iop-agent-${target}.d`] : [])];
    // One top directory, as Buildroot expects of a source archive (it strips it).
    execFileSync('tar', ['--owner=0', '--group=0', `--transform=s,^,iop-agent-${version}-${target}/,`, '-czf', archive, '-C', dist, ...members]);
    console.log(`built ${archive}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
