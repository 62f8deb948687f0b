// A Debian package of the agent, made with Debian's own dpkg-deb: the single
// executable as /usr/bin/iop-agent, its native addons in /usr/lib/iop-agent/addons/,
// the systemd unit, default config and udev rule of the Buildroot tree (one copy of
// each, buildroot/package/iop-agent/), and the maintainer scripts of images/debian/.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';

const root = join(import.meta.dirname, '..');
const PACKAGE_FILES = join(root, 'buildroot', 'package', 'iop-agent');
const MAINTAINER_FILES = join(import.meta.dirname, 'debian');

/** Debian architecture names of the single executables' targets. */
export const DEB_ARCHES = { arm64: 'linux-arm64', amd64: 'linux-x64' } as const;
export type DebArch = keyof typeof DEB_ARCHES;

export interface DebOptions {
  /** npm run build's output: iop-agent-linux-<arch> and iop-agent-linux-<arch>.d/addons/ */
  dist: string;
  /** where the .deb goes */
  out: string;
  arch: DebArch;
  version: string;
  /** an empty scratch directory for the package tree */
  work: string;
  /** DEBFULLNAME and DEBEMAIL name the maintainer */
  env?: NodeJS.ProcessEnv;
  /** gzip level (default 6; tests use 1) */
  level?: number;
}

// Raspberry Pi OS (bookworm) and Debian 12 keep units and rules under /lib.
const UNIT = 'lib/systemd/system/iop-agent.service';
const RULES = 'lib/udev/rules.d/60-iop-agent.rules';
const CONFIG = 'etc/iop-agent/config.yaml';

/** Builds dist/iop-agent_<version>_<arch>.deb and returns its path. */
export function buildDeb(options: DebOptions): string {
  const { dist, arch, version, work } = options;
  const target = DEB_ARCHES[arch];
  const executable = join(dist, `iop-agent-${target}`);
  if (!existsSync(executable)) throw new Error(`${executable} not found: run npm run build first`);
  const tree = join(work, `iop-agent_${version}_${arch}`);
  const maintainer = maintainerOf(options.env ?? process.env);

  place(executable, tree, 'usr/bin/iop-agent', 0o755);
  for (const addon of addonsOf(executable)) place(addon, tree, `usr/lib/iop-agent/addons/${addon.split('/').pop()}`, 0o644);
  place(join(PACKAGE_FILES, 'iop-agent.service'), tree, UNIT, 0o644);
  place(join(PACKAGE_FILES, '60-iop-agent.rules'), tree, RULES, 0o644);
  place(join(PACKAGE_FILES, 'config.yaml'), tree, CONFIG, 0o644);
  write(tree, 'usr/share/doc/iop-agent/copyright', copyright(), 0o644);
  write(tree, 'usr/share/doc/iop-agent/changelog.gz', gzipSync(changelog(version, maintainer), { level: 9 }), 0o644);
  place(join(MAINTAINER_FILES, 'lintian-overrides'), tree, 'usr/share/lintian/overrides/iop-agent', 0o644);

  const md5sums = filesUnder(tree).map((file) => `${md5(file)}  ${relative(tree, file)}\n`).join('');
  const installedKiB = filesUnder(tree).reduce((sum, file) => sum + Math.ceil(statSync(file).size / 1024), 0);
  write(tree, 'DEBIAN/control', control(version, arch, installedKiB, maintainer), 0o644);
  write(tree, 'DEBIAN/md5sums', md5sums, 0o644);
  write(tree, 'DEBIAN/conffiles', `/${CONFIG}\n`, 0o644);
  for (const script of ['postinst', 'prerm', 'postrm', 'config']) place(join(MAINTAINER_FILES, script), tree, `DEBIAN/${script}`, 0o755);
  place(join(MAINTAINER_FILES, 'templates'), tree, 'DEBIAN/templates', 0o644);
  fixDirectoryModes(tree);

  mkdirSync(options.out, { recursive: true });
  const deb = join(options.out, `iop-agent_${version}_${arch}.deb`);
  // gzip -6: every dpkg reads it; xz of a 115 MB executable takes minutes on a small
  // machine for a quarter less.
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', `-z${options.level ?? 6}`, '--build', tree, deb], { stdio: 'pipe' });
  return deb;
}

/** The native addons shipped beside an executable (zero today is fine). */
export function addonsOf(executable: string): string[] {
  const dir = `${executable}.d/addons`;
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => name.endsWith('.node')).sort().map((name) => join(dir, name));
}

/** The maintainer, as Debian's tools take it: DEBFULLNAME and DEBEMAIL. */
export function maintainerOf(env: NodeJS.ProcessEnv): string {
  return `${env.DEBFULLNAME ?? 'iop-agent maintainers'} <${env.DEBEMAIL ?? 'maintainers@iop-agent.org'}>`;
}

function control(version: string, arch: DebArch, installedKiB: number, maintainer: string): string {
  // The executable is the official Node.js binary: glibc 2.28, libstdc++ (GLIBCXX 3.4.21),
  // libgcc_s and libatomic.
  return `Package: iop-agent
Version: ${version}
Architecture: ${arch}
Maintainer: ${maintainer}
Installed-Size: ${installedKiB}
Depends: libc6 (>= 2.28), libstdc++6 (>= 5), libgcc-s1 (>= 3.0), libatomic1 (>= 4.8), adduser, debconf (>= 0.5) | debconf-2.0
Section: net
Priority: optional
Description: firmware agent for Internet-of-People boxes
 Reads sensors, signs every reading with the box's device key (COSE_Sign1 over
 CBOR SenML, hash-chained), keeps the readings in a SQLite journal and forwards
 them over MQTT to a chain gateway, or over an authenticated ad hoc mesh for
 boxes without an uplink.
 .
 Runs as the iop-agent user (groups dialout and gpio) from iop-agent.service;
 configuration in /etc/iop-agent/config.yaml, state in /var/lib/iop-agent.
`;
}

function copyright(): string {
  return `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: iop-agent

Files: *
Copyright: 2026 iop-agent contributors
License: Expat

Files: usr/bin/iop-agent
Copyright: Node.js contributors; 2026 iop-agent contributors
License: Expat
Comment: a Node.js single executable application; Node.js and its bundled
 libraries are under the licenses in its LICENSE file (mostly Expat and BSD).

License: Expat
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
 THE SOFTWARE.
`;
}

function changelog(version: string, maintainer: string): string {
  // A fixed date keeps the package reproducible from the same checkout.
  return `iop-agent (${version}) unstable; urgency=medium

  * Release ${version}; the project's history is in its git log.

 -- ${maintainer}  Tue, 01 Dec 2026 00:00:00 +0000
`;
}

function place(source: string, tree: string, path: string, mode: number): void {
  const target = join(tree, path);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
  chmodSync(target, mode);
}

function write(tree: string, path: string, content: string | Uint8Array, mode: number): void {
  const target = join(tree, path);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, content);
  chmodSync(target, mode);
}

function filesUnder(tree: string): string[] {
  return readdirSync(tree, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && !relative(tree, entry.parentPath).startsWith('DEBIAN'))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

function fixDirectoryModes(tree: string): void {
  chmodSync(tree, 0o755);
  for (const entry of readdirSync(tree, { withFileTypes: true, recursive: true })) {
    if (entry.isDirectory()) chmodSync(join(entry.parentPath, entry.name), 0o755);
  }
}

function md5(file: string): string {
  return createHash('md5').update(readFileSync(file)).digest('hex');
}
