// One CBOR configuration for everything the project puts on the wire or on disk.
// cbor-x defaults suit JS-to-JS transport (records, tag 259 for Map, tag 64 for
// Uint8Array); COSE and SenML need plain RFC 8949 maps and byte strings instead.
import { Encoder, FLOAT32_OPTIONS } from 'cbor-x';

const wireOptions = {
  useRecords: false,
  mapsAsObjects: false,
  useTag259ForMaps: false,
  tagUint8Array: false,
  variableMapSize: true,
  // Integers that exceed 2^53 must come back as bigint so a caller can reject them,
  // not as a silently rounded number.
  int64AsNumber: false,
};

const exactEncoder = new Encoder(wireOptions);

// Sensor values rarely carry more than 7 significant digits; DECIMAL_FIT stores such
// a value as float32 only when it decodes back to the same decimal, saving 4 bytes a
// value on small radio frames. Timestamps need float64 and keep it automatically.
const compactEncoder = new Encoder({ ...wireOptions, useFloat32: FLOAT32_OPTIONS.DECIMAL_FIT });

export function encodeCbor(value: unknown): Uint8Array {
  return exactEncoder.encode(value);
}

export function encodeCompactCbor(value: unknown): Uint8Array {
  return compactEncoder.encode(value);
}

export function decodeCbor(bytes: Uint8Array): unknown {
  return compactEncoder.decode(bytes);
}

/** Splits an RFC 8742 CBOR sequence into its items, each with the exact bytes it came from. */
export function splitCborSequence(bytes: Uint8Array): { value: unknown; bytes: Uint8Array; offset: number }[] {
  const items: { value: unknown; bytes: Uint8Array; offset: number }[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const end = offset + cborItemLength(bytes, offset);
    const slice = bytes.subarray(offset, end);
    items.push({ value: decodeCbor(slice), bytes: slice, offset });
    offset = end;
  }
  return items;
}

/**
 * Length in bytes of the one CBOR data item starting at `start`. Written here because
 * cbor-x decodes a sequence but does not say where each item's bytes begin and end,
 * and the hash chain needs the exact bytes of every message.
 */
export function cborItemLength(bytes: Uint8Array, start: number): number {
  let pos = start;
  let pending = 1; // items still to skip at this point
  const stack: number[] = [];
  const need = (n: number) => {
    if (pos + n > bytes.length) throw new CborSequenceError(`truncated CBOR item at byte ${start}`);
  };
  while (pending > 0 || stack.length > 0) {
    if (pending === 0) {
      pending = stack.pop()!;
      continue;
    }
    need(1);
    const initial = bytes[pos++]!;
    const major = initial >> 5;
    const info = initial & 0x1f;
    let arg = 0;
    if (info < 24) arg = info;
    else if (info <= 27) {
      const size = 1 << (info - 24);
      need(size);
      for (let i = 0; i < size; i++) arg = arg * 256 + bytes[pos++]!;
    } else if (info === 31) {
      throw new CborSequenceError(`indefinite-length CBOR item at byte ${pos - 1} is not accepted`);
    } else {
      throw new CborSequenceError(`malformed CBOR header byte 0x${initial.toString(16)} at byte ${pos - 1}`);
    }
    pending--;
    switch (major) {
      case 0: case 1: case 7:
        break;
      case 2: case 3:
        need(arg);
        pos += arg;
        break;
      case 4: case 5: {
        const children = major === 4 ? arg : arg * 2;
        if (children > bytes.length - pos) throw new CborSequenceError(`CBOR container at byte ${start} claims more items than bytes remain`);
        stack.push(pending);
        pending = children;
        break;
      }
      case 6:
        stack.push(pending);
        pending = 1;
        break;
    }
  }
  return pos - start;
}

export class CborSequenceError extends Error {
  override name = 'CborSequenceError';
}
