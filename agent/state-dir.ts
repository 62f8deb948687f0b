// The state dir holds everything the box must keep: the device key, the public
// identity record and the store. Files are replaced atomically so a power cut leaves
// either the old or the new content, never a torn file.
import { closeSync, constants, fsyncSync, linkSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync, accessSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { IopError, errorMessage } from './errors.ts';

export const DEFAULT_STATE_DIR = '/var/lib/iop-agent';

export function ensureStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new IopError('STATE_DIR', `cannot create state dir ${dir}: ${errorMessage(err)}`, { dir }, { cause: err });
  }
}

export function assertWritable(dir: string): void {
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EROFS' ? 'it is on a read-only file system' : code === 'EACCES' ? 'permission denied' : errorMessage(err);
    throw new IopError('STATE_DIR', `state dir ${dir} is not writable: ${why}`, { dir }, { cause: err });
  }
}

/**
 * Writes `content` to `path` only if no file is there yet: temp file, fsync, hard link
 * (which fails if the target exists, so two processes cannot both create it), fsync
 * of the directory. Returns false if the file already existed.
 */
export function writeFileOnce(path: string, content: string | Uint8Array, mode: number): boolean {
  const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  writeSynced(temp, content, mode);
  try {
    linkSync(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(temp);
    fsyncDir(dirname(path));
  }
}

/** Replaces `path` atomically: temp file, fsync, rename, fsync of the directory. */
export function writeFileAtomic(path: string, content: string | Uint8Array, mode: number): void {
  const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  writeSynced(temp, content, mode);
  renameSync(temp, path);
  fsyncDir(dirname(path));
}

function writeSynced(path: string, content: string | Uint8Array, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
