// Plantower PMS5003 frames: 0x42 0x4D, big-endian length (28), 13 big-endian data words,
// big-endian checksum = 16-bit sum of every byte before it. The parser is pure and
// resyncs on its own: bytes before a start marker, a bad length or a bad checksum cost
// one byte each and scanning goes on, so a frame split across reads or garbage between
// frames never loses the next good frame. The buffer never holds more than one frame.
import { FrameBuffer } from './frame-buffer.ts';

export interface Pms5003Frame {
  /** Standard particle (CF=1) concentrations, ug/m3. */
  pm1Cf1: number;
  pm25Cf1: number;
  pm10Cf1: number;
  /** Atmospheric-environment concentrations, ug/m3: what the box reports. */
  pm1: number;
  pm25: number;
  pm10: number;
  /** Particles over 0.3, 0.5, 1, 2.5, 5 and 10 um per 0.1 L. */
  counts: number[];
}

export const PMS5003_FRAME_BYTES = 32;
const BODY_LENGTH = 28;

/** Commands (host → sensor): 0x42 0x4D cmd dataH dataL checksum(2). */
export function pms5003Command(command: number, data: number): Uint8Array {
  const frame = new Uint8Array([0x42, 0x4d, command, (data >> 8) & 0xff, data & 0xff, 0, 0]);
  const sum = frame.slice(0, 5).reduce((a, b) => a + b, 0);
  frame[5] = (sum >> 8) & 0xff;
  frame[6] = sum & 0xff;
  return frame;
}
/** Switch to passive mode (answers only to PMS5003_READ). */
export const PMS5003_PASSIVE = pms5003Command(0xe1, 0);
export const PMS5003_ACTIVE = pms5003Command(0xe1, 1);
/** In passive mode: send one frame. */
export const PMS5003_READ = pms5003Command(0xe2, 0);

export class Pms5003Parser extends FrameBuffer<Pms5003Frame> {
  constructor() {
    super(PMS5003_FRAME_BYTES);
  }

  protected scan(frames: Pms5003Frame[]): void {
    while (this.used > 0) {
      const b = this.buffer;
      if (b[0] !== 0x42) { this.drop(1); continue; }
      if (this.used < 2) return;
      if (b[1] !== 0x4d) { this.drop(1); continue; }
      if (this.used < 4) return;
      if (((b[2]! << 8) | b[3]!) !== BODY_LENGTH) { this.drop(1); continue; }
      if (this.used < PMS5003_FRAME_BYTES) return;
      let sum = 0;
      for (let i = 0; i < PMS5003_FRAME_BYTES - 2; i++) sum += b[i]!;
      if ((sum & 0xffff) !== ((b[30]! << 8) | b[31]!)) {
        this.badChecksums++;
        this.drop(1);
        continue;
      }
      frames.push(decode(b));
      this.used = 0;
      return;
    }
  }

}

function decode(b: Uint8Array): Pms5003Frame {
  const word = (i: number) => (b[4 + 2 * i]! << 8) | b[5 + 2 * i]!;
  return {
    pm1Cf1: word(0), pm25Cf1: word(1), pm10Cf1: word(2),
    pm1: word(3), pm25: word(4), pm10: word(5),
    counts: [word(6), word(7), word(8), word(9), word(10), word(11)],
  };
}

/** A frame as the sensor sends it (for emulators and tests). */
export function encodePms5003Frame(values: { pm1: number; pm25: number; pm10: number }): Uint8Array {
  const frame = new Uint8Array(PMS5003_FRAME_BYTES);
  frame.set([0x42, 0x4d, 0, BODY_LENGTH]);
  const words = [values.pm1, values.pm25, values.pm10, values.pm1, values.pm25, values.pm10, 1200, 350, 60, 6, 1, 0, 0];
  words.forEach((w, i) => { frame[4 + 2 * i] = (w >> 8) & 0xff; frame[5 + 2 * i] = w & 0xff; });
  const sum = frame.slice(0, 30).reduce((a, x) => a + x, 0);
  frame[30] = (sum >> 8) & 0xff;
  frame[31] = sum & 0xff;
  return frame;
}
