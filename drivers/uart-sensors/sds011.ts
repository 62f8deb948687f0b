// Nova SDS011 data frames: 0xAA 0xC0, PM2.5 ×10 (little-endian), PM10 ×10 (little-endian),
// two id bytes, checksum = sum of bytes 2..7 & 0xFF, 0xAB. Pure and resyncing like the
// PMS5003 parser: a bad byte costs one byte of scanning, the buffer holds one frame.
import { FrameBuffer } from './frame-buffer.ts';

export interface Sds011Frame {
  /** ug/m3 */
  pm25: number;
  pm10: number;
  id: number;
}

export const SDS011_FRAME_BYTES = 10;

export class Sds011Parser extends FrameBuffer<Sds011Frame> {
  constructor() {
    super(SDS011_FRAME_BYTES);
  }

  protected scan(frames: Sds011Frame[]): void {
    while (this.used > 0) {
      const b = this.buffer;
      if (b[0] !== 0xaa) { this.drop(1); continue; }
      if (this.used < 2) return;
      // 0xC0 is the measurement reply; 0xC5 replies to commands and carries no values.
      if (b[1] !== 0xc0 && b[1] !== 0xc5) { this.drop(1); continue; }
      if (this.used < SDS011_FRAME_BYTES) return;
      let sum = 0;
      for (let i = 2; i < 8; i++) sum += b[i]!;
      if (b[9] !== 0xab || (sum & 0xff) !== b[8]) {
        if (b[9] === 0xab) this.badChecksums++;
        this.drop(1);
        continue;
      }
      if (b[1] === 0xc0) {
        frames.push({ pm25: (b[2]! | (b[3]! << 8)) / 10, pm10: (b[4]! | (b[5]! << 8)) / 10, id: b[6]! | (b[7]! << 8) });
      }
      this.used = 0;
      return;
    }
  }

}

/** A measurement frame as the sensor sends it (for emulators and tests). */
export function encodeSds011Frame(values: { pm25: number; pm10: number; id?: number }): Uint8Array {
  const pm25 = Math.round(values.pm25 * 10);
  const pm10 = Math.round(values.pm10 * 10);
  const id = values.id ?? 0xa1b2;
  const frame = new Uint8Array([0xaa, 0xc0, pm25 & 0xff, pm25 >> 8, pm10 & 0xff, pm10 >> 8, id & 0xff, id >> 8, 0, 0xab]);
  frame[8] = frame.slice(2, 8).reduce((a, x) => a + x, 0) & 0xff;
  return frame;
}
