// Where a command writes binary output: a file (written through and fsynced, so a
// power cut leaves what was reported written) or standard output (a pipe may be
// non-blocking, so writes wait for it to drain).
import { closeSync, fstatSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { once } from 'node:events';

export interface Output {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export function openOutput(path: string, stdout: NodeJS.WritableStream): Output {
  if (path === '-') {
    return {
      async write(bytes) {
        if (!stdout.write(bytes)) await once(stdout, 'drain');
      },
      async close() {},
    };
  }
  const fd = openSync(path, 'w', 0o644);
  let closed = false;
  return {
    async write(bytes) {
      let offset = 0;
      while (offset < bytes.length) offset += writeSync(fd, bytes, offset);
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        // Only a regular file is on a disk to flush; /dev/null or a FIFO refuses fsync.
        if (fstatSync(fd).isFile()) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    },
  };
}
