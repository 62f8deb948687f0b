// Gathers the small writes an MQTT client makes into one write per event-loop turn.
// mqtt.js (mqtt-packet) writes each packet in several pieces (fixed header, length,
// topic, packet id, properties, payload: six or seven writes for a PUBLISH, three or
// four for a PUBACK). On a gateway answering thousands of readings a second, each piece
// costs a trip through the socket's Writable (a buffered entry with its callback, the
// string turned into bytes) and an element of the writev: several microseconds of CPU
// per reading. Worse, while the socket is corked every write past its high-water mark
// (16 kB) returns false, and mqtt.js then waits for 'drain' before taking the next
// received packet: a turn ended after about 35 readings, each turn paying its system
// calls, timers and wake-ups of the broker again.
//
// Here the pieces are copied into one buffer (strings encoded into it) and written when
// the turn ends (setImmediate): the same bytes in the same order, one write. A write answers
// what the socket itself says of its buffer (false while it needs to drain, so mqtt.js
// still waits for the broker to read), not the pieces held for this turn, which leave
// with the turn whatever their size.
import type { Writable } from 'node:stream';

type WriteCallback = (err?: Error | null) => void;

/** bytes a turn's buffer starts with (it grows as needed; the next one starts at the last turn's size) */
const MIN_BUFFER = 16 * 1024;

/** Replaces `stream`'s write (and end) so that the pieces written in one turn leave as one write. */
export function coalesceWrites(stream: Writable): void {
  const write = stream.write.bind(stream) as (chunk: unknown, encoding?: BufferEncoding, cb?: WriteCallback) => boolean;
  const end = stream.end.bind(stream) as (...args: unknown[]) => Writable;
  // The turn's bytes, copied in as they are written (strings encoded in place): no Buffer
  // per piece. A new buffer each turn: the stream may hold the last one until it is sent.
  let buffer: Buffer | undefined;
  let size = 0;
  let nextSize = MIN_BUFFER;
  let scheduled = false;

  const room = (bytes: number): Buffer => {
    if (!buffer) {
      buffer = Buffer.allocUnsafeSlow(Math.max(nextSize, bytes));
    } else if (size + bytes > buffer.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(2 * buffer.length, size + bytes));
      grown.set(buffer.subarray(0, size));
      buffer = grown;
    }
    return buffer;
  };

  const flush = () => {
    scheduled = false;
    if (!buffer || size === 0) return;
    const chunk = buffer.subarray(0, size);
    nextSize = Math.max(MIN_BUFFER, size);
    buffer = undefined;
    size = 0;
    // A stream closed meanwhile: what was held goes nowhere, as it would have from its buffer.
    if (!stream.destroyed && !stream.writableEnded) write(chunk);
  };

  stream.write = ((chunk: unknown, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean => {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    // A callback wants this piece's own completion; a closed stream, its own error: both
    // as the stream gives them, after what is held.
    if (cb || stream.destroyed || stream.writableEnded || !(typeof chunk === 'string' || chunk instanceof Uint8Array)) {
      flush();
      return write(chunk, encoding, cb);
    }
    if (typeof chunk === 'string') {
      const into = room(encoding === 'latin1' || encoding === 'binary' || encoding === 'ascii' ? chunk.length : Buffer.byteLength(chunk, encoding ?? 'utf8'));
      size += into.write(chunk, size, encoding ?? 'utf8');
    } else {
      room(chunk.length).set(chunk, size);
      size += chunk.length;
    }
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    return !stream.writableNeedDrain;
  }) as Writable['write'];

  stream.end = ((...args: unknown[]) => {
    flush();
    return end(...args);
  }) as Writable['end'];
}
