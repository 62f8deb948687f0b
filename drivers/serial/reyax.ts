// The REYAX RYLR998/RYLR896 AT dialogue: commands out, CR LF lines back. Pure parsing;
// the link (drivers/radio/reyax-link.ts) runs the state machine.
export const REYAX_MAX_PAYLOAD = 240;
/** Bytes the modem puts on air besides the payload (its own header). */
export const REYAX_OVERHEAD_BYTES = 8;
/** Longest line kept: a +RCV of 240 characters and its fields fits well within it. */
export const MAX_LINE = 320;

/** +ERR=n as the datasheet names them. */
export const REYAX_ERRORS: Record<number, string> = {
  1: 'NO_CRLF',
  2: 'NO_AT',
  4: 'UNKNOWN_COMMAND',
  5: 'LENGTH_MISMATCH',
  10: 'TX_TIMEOUT',
  12: 'CRC',
  13: 'TOO_LONG',
  14: 'FLASH_WRITE',
  15: 'UNKNOWN_FAILURE',
  17: 'TX_BUSY',
  18: 'BAD_PREAMBLE',
  19: 'RX_HEADER',
  20: 'BAD_POWER_SAVING_TIME',
};

export function reyaxErrorName(code: number): string {
  return REYAX_ERRORS[code] ?? `ERR_${code}`;
}

export type ReyaxLine =
  | { t: 'ok' }
  | { t: 'ready' }
  | { t: 'err'; code: number; name: string }
  | { t: 'rcv'; address: number; data: string; rssi: number; snr: number }
  /** another reply (+ADDRESS=..., +VER=...) */
  | { t: 'info'; line: string };

/**
 * One line from the modem, without its CR LF; undefined for a line that is not a reply
 * this driver knows or is malformed (the caller counts it).
 */
export function parseReyaxLine(line: string): ReyaxLine | undefined {
  if (line === '+OK') return { t: 'ok' };
  if (line === '+READY') return { t: 'ready' };
  let m = /^\+ERR=(\d{1,3})$/.exec(line);
  if (m) {
    const code = Number(m[1]);
    return { t: 'err', code, name: reyaxErrorName(code) };
  }
  // +RCV=<address>,<length>,<data>,<rssi>,<snr>: the data may hold commas, so the
  // length decides where it ends.
  m = /^\+RCV=(\d{1,5}),(\d{1,3}),/.exec(line);
  if (m) {
    const length = Number(m[2]);
    if (length > REYAX_MAX_PAYLOAD) return undefined;
    const start = m[0].length;
    const data = line.slice(start, start + length);
    if (data.length !== length) return undefined;
    const tail = /^,(-?\d{1,3}),(-?\d{1,3})$/.exec(line.slice(start + length));
    if (!tail) return undefined;
    return { t: 'rcv', address: Number(m[1]), data, rssi: Number(tail[1]), snr: Number(tail[2]) };
  }
  if (/^\+[A-Z]+(=.*)?$/.test(line)) return { t: 'info', line };
  return undefined;
}

/** Splits the byte stream into lines at LF (CR dropped); overlong lines are dropped and counted. */
export class LineSplitter {
  readonly counters = { lines: 0, overlong: 0, nonText: 0 };
  private readonly maxLine: number;
  private current: number[] = [];
  private overlong = false;

  constructor(maxLine = MAX_LINE) {
    this.maxLine = maxLine;
  }

  push(bytes: Uint8Array): string[] {
    const lines: string[] = [];
    for (const b of bytes) {
      if (b === 0x0a) {
        if (this.overlong) this.counters.overlong++;
        else if (this.current.length) {
          if (this.current.some((c) => c < 0x20 || c > 0x7e)) this.counters.nonText++;
          else {
            this.counters.lines++;
            lines.push(String.fromCharCode(...this.current));
          }
        }
        this.current = [];
        this.overlong = false;
      } else if (b === 0x0d) {
        // CR is the first half of the modem's line end; a bare one is ignored.
      } else if (!this.overlong) {
        if (this.current.length >= this.maxLine) {
          this.overlong = true;
          this.current = [];
        } else this.current.push(b);
      }
    }
    return lines;
  }
}

/** Binary-safe text for the modem: base64 (no CR, LF or comma). 240 characters carry 180 bytes. */
export function encodePayload(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function decodePayload(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, 'base64'));
}

export const REYAX_MTU_BYTES = (REYAX_MAX_PAYLOAD / 4) * 3;

/** AT+PARAMETER's bandwidth code for a bandwidth in Hz. */
export const REYAX_BANDWIDTHS: Record<number, number> = {
  7800: 0, 10400: 1, 15600: 2, 20800: 3, 31250: 4, 41700: 5, 62500: 6, 125000: 7, 250000: 8, 500000: 9,
};
