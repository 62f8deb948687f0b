// NMEA 0183 from a GPS receiver: `$<talker><type>,...*hh\r\n`, checksum = XOR of the
// characters between `$` and `*`. Any talker is accepted (GP, GN, GL, GA, BD, ...).
// GGA gives the fix quality, position and altitude; RMC the UTC date and time and
// whether they are valid. The parser is pure: bytes in, checked sentences out; a line
// longer than NMEA allows is dropped, so memory stays bounded whatever comes in.

export interface GgaSentence {
  type: 'GGA';
  talker: string;
  /** 0 = no fix */
  quality: number;
  satellites: number;
  lat?: number;
  lon?: number;
  /** metres above mean sea level */
  alt?: number;
}

export interface RmcSentence {
  type: 'RMC';
  talker: string;
  valid: boolean;
  /** Unix ms of the fix (UTC date and time), when both are present. */
  timeMs?: number;
  lat?: number;
  lon?: number;
}

export type NmeaSentence = GgaSentence | RmcSentence;

/** NMEA says 82 characters; some receivers send longer proprietary lines. */
const MAX_LINE = 120;

export class NmeaParser {
  private line = '';
  private overflow = false;
  badChecksums = 0;
  /** Lines that were too long or not NMEA at all. */
  malformed = 0;

  push(bytes: Uint8Array): NmeaSentence[] {
    const sentences: NmeaSentence[] = [];
    for (const byte of bytes) {
      if (byte === 0x0a || byte === 0x0d) {
        if (this.line.length > 0 || this.overflow) this.finish(sentences);
        continue;
      }
      if (byte === 0x24) {
        // A `$` always starts a new sentence: a lost line end costs one sentence, not two.
        if (this.line.length > 0) this.malformed++;
        this.line = '$';
        this.overflow = false;
        continue;
      }
      if (this.overflow) continue;
      if (this.line.length >= MAX_LINE) {
        this.overflow = true;
        continue;
      }
      this.line += String.fromCharCode(byte);
    }
    return sentences;
  }

  private finish(sentences: NmeaSentence[]): void {
    const line = this.line;
    const overflow = this.overflow;
    this.line = '';
    this.overflow = false;
    if (overflow || !line.startsWith('$')) { this.malformed++; return; }
    const star = line.lastIndexOf('*');
    if (star < 0 || star + 3 !== line.length) { this.malformed++; return; }
    let sum = 0;
    for (let i = 1; i < star; i++) sum ^= line.charCodeAt(i);
    const given = Number.parseInt(line.slice(star + 1), 16);
    if (!/^[0-9A-Fa-f]{2}$/.test(line.slice(star + 1)) || given !== sum) { this.badChecksums++; return; }
    const sentence = parseSentence(line.slice(1, star).split(','));
    if (sentence) sentences.push(sentence);
  }
}

function parseSentence(fields: string[]): NmeaSentence | undefined {
  const address = fields[0] ?? '';
  if (!/^[A-Z]{5}$/.test(address)) return undefined;
  const talker = address.slice(0, 2);
  const type = address.slice(2);
  if (type === 'GGA') {
    const quality = integer(fields[6]) ?? 0;
    const sentence: GgaSentence = { type: 'GGA', talker, quality, satellites: integer(fields[7]) ?? 0 };
    if (quality > 0) {
      const lat = coordinate(fields[2], fields[3], 'N', 'S', 2);
      const lon = coordinate(fields[4], fields[5], 'E', 'W', 3);
      const alt = decimal(fields[9]);
      if (lat !== undefined) sentence.lat = lat;
      if (lon !== undefined) sentence.lon = lon;
      if (alt !== undefined && fields[10] === 'M') sentence.alt = alt;
    }
    return sentence;
  }
  if (type === 'RMC') {
    const valid = fields[2] === 'A';
    const sentence: RmcSentence = { type: 'RMC', talker, valid };
    const timeMs = utc(fields[1], fields[9]);
    if (timeMs !== undefined) sentence.timeMs = timeMs;
    if (valid) {
      const lat = coordinate(fields[3], fields[4], 'N', 'S', 2);
      const lon = coordinate(fields[5], fields[6], 'E', 'W', 3);
      if (lat !== undefined) sentence.lat = lat;
      if (lon !== undefined) sentence.lon = lon;
    }
    return sentence;
  }
  return undefined;
}

function integer(text: string | undefined): number | undefined {
  return text !== undefined && /^\d{1,3}$/.test(text) ? Number(text) : undefined;
}

function decimal(text: string | undefined): number | undefined {
  return text !== undefined && /^-?\d{1,6}(\.\d{1,6})?$/.test(text) ? Number(text) : undefined;
}

/** ddmm.mmmm / dddmm.mmmm with a hemisphere letter, to signed decimal degrees. */
function coordinate(value: string | undefined, hemisphere: string | undefined, positive: string, negative: string, degreeDigits: number): number | undefined {
  if (value === undefined || !new RegExp(`^\\d{${degreeDigits}}\\d{2}(\\.\\d{1,7})?$`).test(value)) return undefined;
  if (hemisphere !== positive && hemisphere !== negative) return undefined;
  const degrees = Number(value.slice(0, degreeDigits)) + Number(value.slice(degreeDigits)) / 60;
  if (degrees > (degreeDigits === 2 ? 90 : 180)) return undefined;
  const signed = hemisphere === negative ? -degrees : degrees;
  return Math.round(signed * 1e7) / 1e7;
}

/** hhmmss(.sss) and ddmmyy to Unix ms; NMEA years are 20yy (receivers roll over in 2080). */
function utc(time: string | undefined, date: string | undefined): number | undefined {
  const t = time !== undefined ? /^(\d{2})(\d{2})(\d{2})(\.\d{1,3})?$/.exec(time) : null;
  const d = date !== undefined ? /^(\d{2})(\d{2})(\d{2})$/.exec(date) : null;
  if (!t || !d) return undefined;
  const [hh, mm, ss] = [Number(t[1]), Number(t[2]), Number(t[3])];
  const [day, month, yy] = [Number(d[1]), Number(d[2]), Number(d[3])];
  if (hh > 23 || mm > 59 || ss > 60 || day < 1 || day > 31 || month < 1 || month > 12) return undefined;
  const ms = t[4] ? Math.round(Number(t[4]) * 1000) : 0;
  return Date.UTC(2000 + yy, month - 1, day, hh, mm, ss, ms);
}

/** A sentence with its checksum and line end (for emulators and tests). */
export function nmeaSentence(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}
