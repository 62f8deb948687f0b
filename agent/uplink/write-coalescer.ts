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
// Here the pieces are kept (strings as bytes) and written as one buffer when the turn
// ends (setImmediate): the same bytes in the same order, one write. A write answers
// what the socket itself says of its buffer (false while it needs to drain, so mqtt.js
// still waits for the broker to read), not the pieces held for this turn, which leave
// with the turn whatever their size.
import type { Writable } from 'node:stream';

type WriteCallback = (err?: Error | null) => void;

/** Replaces `stream`'s write (and end) so that the pieces written in one turn leave as one write. */
export function coalesceWrites(stream: Writable): void {
  const write = stream.write.bind(stream) as (chunk: unknown, encoding?: BufferEncoding, cb?: WriteCallback) => boolean;
  const end = stream.end.bind(stream) as (...args: unknown[]) => Writable;
  let pieces: Uint8Array[] = [];
  let size = 0;
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    if (pieces.length === 0) return;
    const chunk = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, size);
    pieces = [];
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
    const piece = typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : chunk;
    pieces.push(piece);
    size += piece.length;
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
