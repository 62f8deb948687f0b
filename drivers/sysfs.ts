// Reads kernel attribute files (1-Wire, IIO, GPIO) under a configurable root, so the
// tests point the same code at a fixture tree. Paths are relative to the root and may
// not climb out of it: a sensor id from the configuration never names another file.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { existsSync, readlinkSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';

export class SysfsError extends Error {
  override name = 'SysfsError';
  /** The errno code (ENOENT, EIO, ...) when the kernel refused the read. */
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

export class Sysfs {
  readonly root: string;

  constructor(root = '/') {
    this.root = root;
  }

  /** The absolute path of `relative` under the root; throws for a path that leaves it. */
  path(relative: string): string {
    const clean = normalize(relative).replace(/^\/+/, '');
    if (isAbsolute(clean) || clean === '..' || clean.startsWith(`..${sep}`)) throw new SysfsError(`path '${relative}' leaves the sysfs root`);
    return join(this.root, clean);
  }

  exists(relative: string): boolean {
    return existsSync(this.path(relative));
  }

  /** The file's text; rejects with a SysfsError naming the file and the errno. */
  async read(relative: string): Promise<string> {
    const path = this.path(relative);
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      throw asSysfsError(err, path, 'read');
    }
  }

  /** The file's text without the trailing newline the kernel adds. */
  async readTrimmed(relative: string): Promise<string> {
    return (await this.read(relative)).trim();
  }

  async write(relative: string, text: string): Promise<void> {
    const path = this.path(relative);
    try {
      await writeFile(path, text);
    } catch (err) {
      throw asSysfsError(err, path, 'write');
    }
  }

  /** The last part of a symlink's target (sysfs `device` links name the device), or undefined. */
  linkName(relative: string): string | undefined {
    try {
      return readlinkSync(this.path(relative)).split('/').filter(Boolean).pop();
    } catch {
      return undefined;
    }
  }

  /** Entry names of a directory, sorted; [] when it does not exist. */
  async list(relative: string): Promise<string[]> {
    try {
      return (await readdir(this.path(relative))).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw asSysfsError(err, this.path(relative), 'list');
    }
  }
}

function asSysfsError(err: unknown, path: string, what: string): SysfsError {
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code === 'ENOENT' ? 'device missing' : code ?? (err instanceof Error ? err.message : String(err));
  return new SysfsError(`${what} ${path}: ${reason}`, code);
}
