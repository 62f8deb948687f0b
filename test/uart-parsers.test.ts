// The UART parsers (PMS5003, SDS011, NMEA) are pure and resync by themselves: frames
// split anywhere, garbage between frames, bad checksums. Fuzz: 100,000 mutated inputs
// into each, no exception, every call returns, and the internal buffers stay bounded.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodePms5003Frame, Pms5003Parser, PMS5003_READ } from '../drivers/uart-sensors/pms5003.ts';
import { encodeSds011Frame, Sds011Parser } from '../drivers/uart-sensors/sds011.ts';
import { NmeaParser, nmeaSentence, type GgaSentence, type RmcSentence } from '../drivers/uart-sensors/nmea.ts';

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const text = (s: string) => new TextEncoder().encode(s);

/** Feeds `bytes` in every chunking from 1 byte to whole: the result must not depend on it. */
function feedChunked<F>(make: () => { push(b: Uint8Array): F[] }, bytes: Uint8Array, chunk: number): F[] {
  const parser = make();
  const out: F[] = [];
  for (let i = 0; i < bytes.length; i += chunk) out.push(...parser.push(bytes.subarray(i, i + chunk)));
  return out;
}

test('pms5003: frames split anywhere, garbage between, a bad checksum skipped, the next frame found', () => {
  const good1 = encodePms5003Frame({ pm1: 3, pm25: 7, pm10: 12 });
  const bad = encodePms5003Frame({ pm1: 9, pm25: 9, pm10: 9 });
  bad[31] = bad[31]! ^ 0xff;
  const good2 = encodePms5003Frame({ pm1: 300, pm25: 512, pm10: 999 });
  // garbage that contains a false start (0x42 0x4D with a wrong length)
  const garbage = new Uint8Array([0x00, 0x42, 0x42, 0x4d, 0x00, 0x99, 0x4d, 0xff]);
  const stream = concat(garbage, good1, bad.subarray(0, 20), bad, garbage, good2, PMS5003_READ);
  for (const chunk of [1, 2, 3, 7, 31, 32, 33, stream.length]) {
    const frames = feedChunked(() => new Pms5003Parser(), stream, chunk);
    assert.equal(frames.map((f) => [f.pm1, f.pm25, f.pm10]), [[3, 7, 12], [300, 512, 999]], `chunk ${chunk}`);
  }
  const parser = new Pms5003Parser();
  parser.push(stream);
  // the truncated copy plus the start of the next one is a second frame with a bad sum
  assert.is(parser.badChecksums, 2);
});

test('sds011: frames, command replies ignored, bad checksum and bad tail skipped', () => {
  const good = encodeSds011Frame({ pm25: 12.3, pm10: 45.6 });
  const badSum = encodeSds011Frame({ pm25: 1, pm10: 2 });
  badSum[8] = badSum[8]! ^ 1;
  const reply = new Uint8Array([0xaa, 0xc5, 0x07, 0x03, 0x00, 0x00, 0xa1, 0x60, 0x0b, 0xab]);
  reply[8] = reply.slice(2, 8).reduce((a, b) => a + b, 0) & 0xff;
  const stream = concat(new Uint8Array([0xaa, 0xaa, 0x13]), good, badSum, reply, good.subarray(0, 4), encodeSds011Frame({ pm25: 999.9, pm10: 0 }));
  for (const chunk of [1, 3, 10, stream.length]) {
    const frames = feedChunked(() => new Sds011Parser(), stream, chunk);
    assert.equal(frames.map((f) => [f.pm25, f.pm10]), [[12.3, 45.6], [999.9, 0]], `chunk ${chunk}`);
  }
});

test('nmea: GGA and RMC with and without a fix, other talkers, bad checksums, overlong lines', () => {
  const gga = nmeaSentence('GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,');
  const ggaNoFix = nmeaSentence('GPGGA,123520,,,,,0,00,99.9,,,,,,');
  const rmc = nmeaSentence('GNRMC,123519.00,A,4807.038,N,01131.000,W,022.4,084.4,011226,003.1,W');
  const rmcVoid = nmeaSentence('GPRMC,000012,V,,,,,,,060180,,,N');
  const badSum = gga.replace('*', '*0').slice(0, -5) + '*00\r\n';
  const stream = text(`garbage\r\n${gga}${'$GPXXX,' + 'x'.repeat(500)}\r\n${badSum}${ggaNoFix}$GPGGA,trunc${rmc}${rmcVoid}${nmeaSentence('GPGSV,3,1,11,03,03,111,00')}`);
  for (const chunk of [1, 5, 80, stream.length]) {
    const sentences = feedChunked(() => new NmeaParser(), stream, chunk);
    assert.is(sentences.length, 4, `chunk ${chunk}`);
    const [fix, noFix, valid, invalid] = sentences as [GgaSentence, GgaSentence, RmcSentence, RmcSentence];
    assert.equal(fix, { type: 'GGA', talker: 'GP', quality: 1, satellites: 8, lat: 48.1173, lon: 11.5166667, alt: 545.4 });
    assert.equal(noFix, { type: 'GGA', talker: 'GP', quality: 0, satellites: 0 });
    assert.equal(valid, { type: 'RMC', talker: 'GN', valid: true, timeMs: Date.UTC(2026, 11, 1, 12, 35, 19), lat: 48.1173, lon: -11.5166667 });
    assert.is(invalid.valid, false);
  }
  const parser = new NmeaParser();
  parser.push(stream);
  assert.is(parser.badChecksums, 1);
});

// A small deterministic PRNG so a failure reproduces.
function rng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}

function mutate(base: Uint8Array, random: () => number): Uint8Array {
  const bytes = Array.from(base);
  const edits = 1 + Math.floor(random() * 6);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * (bytes.length + 1));
    switch (Math.floor(random() * 5)) {
      case 0: if (bytes.length) bytes[at % bytes.length] = Math.floor(random() * 256); break;
      case 1: bytes.splice(at, 0, Math.floor(random() * 256)); break;
      case 2: bytes.splice(at, 1 + Math.floor(random() * 8)); break;
      case 3: bytes.splice(at, 0, ...bytes.slice(0, Math.floor(random() * 40))); break;
      default: if (bytes.length) bytes[at % bytes.length]! ^= 1 << Math.floor(random() * 8);
    }
  }
  return new Uint8Array(bytes);
}

const FUZZ_INPUTS = 100_000;

function fuzz(name: string, make: () => { push(b: Uint8Array): unknown[] }, seeds: Uint8Array[], bound: (parser: object) => number, limit: number) {
  test(`fuzz ${name}: ${FUZZ_INPUTS} mutated inputs, no exception, buffer bounded`, () => {
    const random = rng(name.length * 7919);
    const parser = make();
    let frames = 0;
    let largest = 0;
    for (let i = 0; i < FUZZ_INPUTS; i++) {
      // One long-lived parser sees everything (state carried across inputs, as on a wire)...
      const input = mutate(seeds[i % seeds.length]!, random);
      frames += parser.push(input).length;
      largest = Math.max(largest, bound(parser));
      // ...and every thousandth input also goes byte by byte into a fresh one.
      if (i % 1000 === 0) feedChunked(make, input, 1);
    }
    assert.ok(largest <= limit, `internal buffer reached ${largest} > ${limit}`);
    assert.ok(frames > 0, 'some mutated inputs still hold good frames');
  });
}

fuzz('pms5003', () => new Pms5003Parser(), [concat(encodePms5003Frame({ pm1: 1, pm25: 2, pm10: 3 }), encodePms5003Frame({ pm1: 4, pm25: 5, pm10: 6 }))],
  (p) => (p as unknown as { used: number }).used, 32);
fuzz('sds011', () => new Sds011Parser(), [concat(encodeSds011Frame({ pm25: 1, pm10: 2 }), encodeSds011Frame({ pm25: 3, pm10: 4 }))],
  (p) => (p as unknown as { used: number }).used, 10);
fuzz('nmea', () => new NmeaParser(), [
  text(nmeaSentence('GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,') + nmeaSentence('GNRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,011226,003.1,W')),
  text(nmeaSentence('GPGGA,123520,,,,,0,00,99.9,,,,,,') + nmeaSentence('GPRMC,000012,V,,,,,,,060180,,,N')),
], (p) => (p as unknown as { line: string }).line.length, 121);

test.run();
