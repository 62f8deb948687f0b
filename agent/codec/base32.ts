// RFC 4648 base32, lowercase, no padding: letters and digits only, so the result is
// safe as an MQTT topic level, a file name and a DNS label, and is case-insensitive
// when a person reads it aloud.
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

export function toBase32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

export function fromBase32(text: string): Uint8Array {
  const lower = text.toLowerCase();
  const out = new Uint8Array(Math.floor((lower.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let index = 0;
  for (const char of lower) {
    const value = ALPHABET.indexOf(char);
    if (value < 0) throw new Error(`'${char}' is not a base32 character`);
    buffer = (buffer << 5) | value;
    bits += 5;
    if (bits >= 8) {
      out[index++] = (buffer >> (bits - 8)) & 0xff;
      bits -= 8;
    }
    buffer &= (1 << bits) - 1;
  }
  // Leftover bits must be zero, or two texts would name the same bytes.
  if (buffer !== 0) throw new Error('base32 text has non-zero trailing bits');
  return out;
}
