// Opens a serial device (or pseudo-terminal) with @serialport/stream and says in words
// why it could not: no such device, permission, busy.
import { readdirSync, write } from 'node:fs';
import type { AutoDetectTypes, OpenOptions } from '@serialport/bindings-cpp';
import type { SerialPortStream } from '@serialport/stream';

export type SerialPort = SerialPortStream;
const WRITE_RETRY_MS = 5;
export type OpenFailure = 'NO_DEVICE' | 'PERMISSION' | 'BUSY' | 'OTHER';

export class SerialOpenError extends Error {
  override name = 'SerialOpenError';
  readonly reason: OpenFailure;
  constructor(reason: OpenFailure, message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * Two workarounds for the Linux binding on Node 26 (seen on pseudo-terminals):
 * - its native poller calls back into JavaScript without draining the microtask queue, so
 *   a pending read would resume only at the next timer (seconds late on a quiet agent):
 *   an immediate after each poller event lets it resume;
 * - a write that met a full tty buffer waits for a "writable" poll that can be lost while
 *   a read is polled too, and then never finishes: writes here retry on a short timer.
 */
function kickedBinding(autoDetect: () => AutoDetectTypes): AutoDetectTypes {
  const base = autoDetect();
  return {
    list: () => base.list(),
    async open(options: OpenOptions) {
      const port = await base.open(options as never);
      const poller = (port as unknown as { poller?: NodeJS.EventEmitter }).poller;
      const kick = () => setImmediate(() => {});
      for (const event of ['readable', 'writable', 'disconnect']) poller?.on(event, kick);
      port.write = (buffer: Buffer) => writeAll(port as unknown as { fd: number | null; isOpen: boolean }, buffer);
      return port;
    },
  } as AutoDetectTypes;
}

async function writeAll(port: { fd: number | null; isOpen: boolean }, buffer: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buffer.length) {
    if (!port.isOpen || port.fd === null) throw new Error('Port is not open');
    try {
      offset += await new Promise<number>((resolve, reject) => write(port.fd!, buffer, offset, buffer.length - offset, (err, n) => (err ? reject(err) : resolve(n))));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK' && code !== 'EINTR') throw err;
      await new Promise((resolve) => setTimeout(resolve, WRITE_RETRY_MS));
    }
  }
}

/**
 * The native serial binding is loaded on first use, not at start: an agent without a
 * console (or a build without the addon) runs without it.
 */
async function loadSerialport(): Promise<{ autoDetect: () => AutoDetectTypes; SerialPortStream: typeof SerialPortStream }> {
  try {
    const [bindings, stream] = await Promise.all([import('@serialport/bindings-cpp'), import('@serialport/stream')]);
    return { autoDetect: bindings.autoDetect, SerialPortStream: stream.SerialPortStream };
  } catch (err) {
    throw new SerialOpenError('OTHER', `serial ports are not available in this build: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
}

export async function openSerial(path: string, baudRate: number): Promise<SerialPort> {
  const { autoDetect, SerialPortStream: Stream } = await loadSerialport();
  return new Promise((resolve, reject) => {
    const port = new Stream({ binding: kickedBinding(autoDetect), path, baudRate, autoOpen: false, lock: true });
    port.open((err) => (err ? reject(explainOpenError(path, err)) : resolve(port)));
  });
}

export function explainOpenError(path: string, err: Error): SerialOpenError {
  const text = err.message;
  if (/ENOENT|No such file/i.test(text)) {
    const candidates = listSerialById();
    const hint = candidates.length ? `; serial devices present: ${candidates.join(', ')}` : '; no /dev/serial/by-id/* devices are present (is the cable plugged in?)';
    return new SerialOpenError('NO_DEVICE', `${path}: no such device${hint}`);
  }
  if (/EACCES|Permission denied/i.test(text)) return new SerialOpenError('PERMISSION', `${path}: permission denied (add yourself to the dialout group, or use sudo)`);
  if (/EBUSY|lock|Resource temporarily unavailable/i.test(text)) return new SerialOpenError('BUSY', `${path}: busy: another program has it open (screen, minicom, another console?)`);
  return new SerialOpenError('OTHER', `${path}: cannot open: ${text}`);
}

export function listSerialById(dir = '/dev/serial/by-id'): string[] {
  try {
    return readdirSync(dir).sort().map((name) => `${dir}/${name}`);
  } catch {
    return [];
  }
}
