// A cpio archive in the "newc" format, the one the Linux kernel unpacks as its
// initramfs. Uncompressed: the emulated CPU inflated a gzip -1 archive of the image's
// 128 MB in about 6 s of every boot, the kernel copies a plain one in a fraction of that. Written here because Debian machines rarely have cpio installed and
// because an initramfs needs entries the build user cannot make on disk (root-owned
// files, /dev/console).
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';

export type Entry =
  | { kind: 'dir'; path: string; mode: number; uid?: number; gid?: number }
  | { kind: 'file'; path: string; mode: number; uid?: number; gid?: number; source: string }
  | { kind: 'data'; path: string; mode: number; uid?: number; gid?: number; data: string | Uint8Array }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'char'; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/** Writes `entries` (parents before children) as an uncompressed newc archive to `out`. */
export async function writeInitramfs(out: string, entries: Entry[]): Promise<void> {
  await pipeline(records(entries), createWriteStream(out));
}

async function* records(entries: Entry[]): AsyncGenerator<Buffer> {
  let ino = 1;
  for (const entry of entries) {
    const path = entry.path.replace(/^\/+/, '');
    switch (entry.kind) {
      case 'dir':
        yield header(ino++, S_IFDIR | entry.mode, entry.uid ?? 0, entry.gid ?? 0, 0, path);
        break;
      case 'symlink': {
        const target = Buffer.from(entry.target);
        yield header(ino++, S_IFLNK | 0o777, 0, 0, target.length, path);
        yield* padded(target);
        break;
      }
      case 'char':
        yield header(ino++, S_IFCHR | entry.mode, 0, 0, 0, path, entry.major, entry.minor);
        break;
      case 'data': {
        const data = Buffer.from(entry.data);
        yield header(ino++, S_IFREG | entry.mode, entry.uid ?? 0, entry.gid ?? 0, data.length, path);
        yield* padded(data);
        break;
      }
      case 'file': {
        const size = statSync(entry.source).size;
        yield header(ino++, S_IFREG | entry.mode, entry.uid ?? 0, entry.gid ?? 0, size, path);
        for await (const chunk of createReadStream(entry.source, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
        yield pad(size);
        break;
      }
    }
  }
  yield header(0, 0, 0, 0, 0, 'TRAILER!!!');
}

function* padded(data: Buffer): Generator<Buffer> {
  yield data;
  yield pad(data.length);
}

function pad(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function header(ino: number, mode: number, uid: number, gid: number, size: number, name: string, rdevMajor = 0, rdevMinor = 0): Buffer {
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const nameBytes = Buffer.from(`${name}\0`);
  // The fixed fields are 110 bytes; name and header together pad to 4.
  const fields = ['070701', hex(ino), hex(mode), hex(uid), hex(gid), hex(1), hex(0), hex(size), hex(0), hex(0), hex(rdevMajor), hex(rdevMinor), hex(nameBytes.length), hex(0)].join('');
  const head = Buffer.concat([Buffer.from(fields), nameBytes]);
  return Buffer.concat([head, pad(head.length)]);
}
