// What the binary UART parsers share: a buffer of at most one frame, fed byte by byte;
// the parser's scan() looks at the front and either waits for more bytes, drops one
// byte (no frame starts here: resync) or takes a checked frame. Bounded by design.

export abstract class FrameBuffer<F> {
  protected readonly buffer: Uint8Array;
  protected used = 0;
  /** Frames that looked right but whose checksum did not match. */
  badChecksums = 0;
  /** Bytes skipped while looking for a frame. */
  skippedBytes = 0;

  constructor(frameBytes: number) {
    this.buffer = new Uint8Array(frameBytes);
  }

  /** Feeds bytes; returns the complete, checked frames they finished. */
  push(bytes: Uint8Array): F[] {
    const frames: F[] = [];
    for (const byte of bytes) {
      this.buffer[this.used++] = byte;
      this.scan(frames);
    }
    return frames;
  }

  /** Looks at the front of the buffer after each byte (see the class comment). */
  protected abstract scan(frames: F[]): void;

  /** Drops n bytes from the front; a rescan may find a frame start inside them. */
  protected drop(n: number): void {
    this.skippedBytes += n;
    this.buffer.copyWithin(0, n, this.used);
    this.used -= n;
  }
}
