// Debian's arm64 packages for the emulated box, fetched with apt from the archive this
// machine already uses, through a private apt state (its own lists, no
// `dpkg --add-architecture`), so the host's package configuration stays untouched.
// Everything is cached: a second image build downloads nothing.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const LISTS_MAX_AGE_MS = 7 * 86_400_000;
/** This machine's own architecture: the kernel's build tools (linux-kbuild) run here. */
export const HOST_ARCH = execFileSync('dpkg', ['--print-architecture']).toString().trim();
const ARCHES = [...new Set(['arm64', HOST_ARCH])];

export class DebianArchive {
  readonly dir: string;
  readonly debs: string;
  constructor(cache: string) {
    this.dir = join(cache, 'apt');
    this.debs = join(cache, 'debs');
  }

  private options(): string[] {
    return [
      '-q', '-o', 'Dir::Etc::SourceList=/dev/null', '-o', `Dir::Etc::SourceParts=${join(this.dir, 'sources')}`,
      '-o', `Dir::State::Lists=${join(this.dir, 'lists')}`, '-o', `Dir::State::status=${join(this.dir, 'status')}`,
      '-o', `Dir::Cache=${join(this.dir, 'cache')}`, '-o', 'APT::Architecture=arm64', ...ARCHES.flatMap((arch) => ['-o', `APT::Architectures::=${arch}`]),
      '-o', 'Acquire::Languages=none', '-o', 'APT::Sandbox::User=root',
    ];
  }

  /** apt-get update into the private lists, unless they are recent. */
  update(): void {
    const stamp = join(this.dir, 'updated');
    const fresh = existsSync(stamp) && Date.now() - statSync(stamp).mtimeMs < LISTS_MAX_AGE_MS;
    if (fresh && readFileSync(stamp, 'utf8') === ARCHES.join(' ')) return;
    for (const sub of ['sources', 'lists/partial', 'cache']) mkdirSync(join(this.dir, sub), { recursive: true });
    writeFileSync(join(this.dir, 'status'), '');
    // The host's own Debian sources (the only archive this machine may reach).
    const sources = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'].filter((file) => existsSync(file) && statSync(file).size > 0);
    if (sources.length === 0) throw new Error('no Debian apt sources on this machine (/etc/apt/sources.list.d/debian.sources)');
    for (const source of sources) copyFileSync(source, join(this.dir, 'sources', source.endsWith('.sources') ? 'debian.sources' : 'debian.list'));
    execFileSync('apt-get', [...this.options(), 'update'], { stdio: 'pipe' });
    writeFileSync(stamp, ARCHES.join(' '));
  }

  /** The current kernel package behind a metapackage (Debian drops old ABIs from the archive). */
  resolveKernel(meta = 'linux-image-arm64'): string {
    // apt-cache reads all the lists each time (seconds): the answer is kept beside them
    // until the next update.
    const memo = join(this.dir, `resolved-${meta}`);
    const lists = join(this.dir, 'updated');
    if (existsSync(memo) && existsSync(lists) && statSync(memo).mtimeMs >= statSync(lists).mtimeMs) return readFileSync(memo, 'utf8');
    const out = execFileSync('apt-cache', [...this.options(), 'depends', meta], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    const name = /Depends: (linux-image-\S+)/.exec(out)?.[1];
    if (!name) throw new Error(`cannot resolve ${meta}: ${out}`);
    writeFileSync(memo, name);
    return name;
  }

  /** The .deb of `name` (arm64, or `arch`; architecture-independent packages too), downloaded once. */
  download(name: string, arch = 'arm64'): string {
    mkdirSync(this.debs, { recursive: true });
    const cached = readdirSync(this.debs).find((file) => file.startsWith(`${name}_`) && (file.endsWith(`_${arch}.deb`) || file.endsWith('_all.deb')));
    if (cached) return join(this.debs, cached);
    const partial = join(this.debs, '.partial');
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial);
    execFileSync('apt-get', [...this.options(), 'download', `${name}:${arch}`], { cwd: partial, stdio: 'pipe' });
    const [file] = readdirSync(partial).filter((f) => f.endsWith('.deb'));
    if (!file) throw new Error(`apt-get download ${name}:${arch} gave no package`);
    const target = join(this.debs, file.replace(/%3a/gi, '_'));
    renameSync(join(partial, file), target);
    rmSync(partial, { recursive: true });
    return target;
  }

  /** The package's files unpacked under cache/unpacked/<name>, once. */
  unpack(name: string, arch = 'arm64'): string {
    const deb = this.download(name, arch);
    const dir = join(this.debs, '..', 'unpacked', deb.split('/').pop()!.replace(/\.deb$/, ''));
    if (existsSync(join(dir, '.done'))) return dir;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    execFileSync('dpkg-deb', ['-x', deb, dir]);
    writeFileSync(join(dir, '.done'), '');
    return dir;
  }
}
