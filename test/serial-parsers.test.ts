// The serial radio parsers on their own: KISS framing round trips, RNode answers, the
// REYAX AT lines, the link header; then 100,000 random and mutated byte streams through
// each parser: no crash, no hang, bounded memory, every rejected input counted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeKiss, FEND, FESC, KissDeframer } from '../drivers/serial/kiss.ts';
import { configurationFrames, DETECT_RESPONSE, parseRNodeFrame, RNODE } from '../drivers/serial/rnode.ts';
import { decodePayload, encodePayload, LineSplitter, parseReyaxLine, REYAX_MTU_BYTES } from '../drivers/serial/reyax.ts';
import { decodeLinkFrame, encodeLinkFrame } from '../drivers/radio/link-frame.ts';
import { SeededRandom } from '../drivers/sim/random.ts';

const bytes = (...b: number[]) => Uint8Array.from(b);

test('KISS: FEND and FESC are escaped, and frames come back whole however the bytes are split', () => {
  const data = bytes(1, FEND, 2, FESC, 3, FEND, FESC);
  const wire = encodeKiss(0x00, data);
  assert.equal([...wire], [FEND, 0, 1, FESC, 0xdc, 2, FESC, 0xdd, 3, FESC, 0xdc, FESC, 0xdd, FEND]);
  const deframer = new KissDeframer();
  const frames = [...wire, ...encodeKiss(0x08, bytes(0x46))].flatMap((b) => deframer.push(bytes(b)));
  assert.equal(frames.map((f) => [f.command, [...f.data]]), [[0, [...data]], [8, [0x46]]]);
});

test('KISS: noise between frames, a bad escape and an oversize frame are counted and skipped; the next frame arrives', () => {
  const deframer = new KissDeframer(8);
  const frames = deframer.push(Uint8Array.from([
    0x41, 0x42, // noise before any frame
    FEND, 0, 1, FESC, 0x99, 2, FEND, // bad escape
    FEND, 0, ...new Array(20).fill(7), FEND, // oversize
    FEND, 0, 9, 9, FEND,
  ]));
  assert.equal(frames.map((f) => [...f.data]), [[9, 9]]);
  assert.equal(deframer.counters, { frames: 1, badEscape: 1, oversize: 1, noiseBytes: 2 });
});

test('RNode: answers are parsed by command and length; wrong lengths and unknown commands are not', () => {
  assert.equal(parseRNodeFrame(RNODE.DETECT, bytes(DETECT_RESPONSE)), { t: 'detect' });
  assert.is(parseRNodeFrame(RNODE.DETECT, bytes(0x00)), undefined);
  assert.equal(parseRNodeFrame(RNODE.FW_VERSION, bytes(1, 74)), { t: 'firmware', major: 1, minor: 74 });
  assert.equal(parseRNodeFrame(RNODE.FREQUENCY, bytes(0x33, 0xd3, 0x4e, 0x48)), { t: 'frequency', value: 869_486_152 });
  assert.equal(parseRNodeFrame(RNODE.STAT_RSSI, bytes(57)), { t: 'rssi', dbm: -100 });
  assert.equal(parseRNodeFrame(RNODE.STAT_SNR, bytes(0xf8)), { t: 'snr', db: -2 });
  assert.is(parseRNodeFrame(RNODE.FREQUENCY, bytes(1, 2)), undefined);
  assert.is(parseRNodeFrame(0x77, bytes(1)), undefined);
  const frames = configurationFrames({ frequencyHz: 869_525_000, bandwidthHz: 250_000, spreadingFactor: 7, codingRate: 5, txPowerDbm: 14 });
  assert.equal(frames.map((f) => f.expect.t), ['frequency', 'bandwidth', 'txpower', 'sf', 'cr', 'radiostate']);
});

test('REYAX: +OK, +READY, +ERR by name, +RCV with commas in the data decided by its length', () => {
  assert.equal(parseReyaxLine('+OK'), { t: 'ok' });
  assert.equal(parseReyaxLine('+READY'), { t: 'ready' });
  assert.equal(parseReyaxLine('+ERR=13'), { t: 'err', code: 13, name: 'TOO_LONG' });
  assert.equal(parseReyaxLine('+RCV=7,5,a,b,c,-47,11'), { t: 'rcv', address: 7, data: 'a,b,c', rssi: -47, snr: 11 });
  assert.is(parseReyaxLine('+RCV=7,9,a,b,c,-47,11'), undefined, 'length longer than the data');
  assert.is(parseReyaxLine('+RCV=7,241,x,1,1'), undefined, 'over 240');
  assert.is(parseReyaxLine('garbage'), undefined);
  const splitter = new LineSplitter(16);
  const lines = splitter.push(new TextEncoder().encode('+OK\r\n\r\n+READY\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n+OK\r\n\x01\x02\r\n'));
  assert.equal(lines, ['+OK', '+READY', '+OK']);
  assert.equal(splitter.counters, { lines: 3, overlong: 1, nonText: 1 });
});

test('REYAX payload encoding: any bytes survive, 240 characters carry the MTU, and bad text is refused', () => {
  const random = new SeededRandom(5);
  const data = Uint8Array.from({ length: REYAX_MTU_BYTES }, () => random.int(256));
  const text = encodePayload(data);
  assert.is(text.length, 240);
  assert.not.match(text, /[\r\n,]/);
  assert.equal([...decodePayload(text)!], [...data]);
  assert.is(decodePayload('abc'), undefined);
  assert.is(decodePayload('ab\ncd=='), undefined);
});

test('link header: broadcast and unicast round trip; other versions and short frames are refused', () => {
  const b = decodeLinkFrame(encodeLinkFrame('0a0b0c0d', undefined, bytes(1, 2)))!;
  assert.equal([b.from, b.to, [...b.data]], ['0a0b0c0d', undefined, [1, 2]]);
  const u = decodeLinkFrame(encodeLinkFrame('0a0b0c0d', 'ffeeddcc', bytes(3)))!;
  assert.equal([u.from, u.to, [...u.data]], ['0a0b0c0d', 'ffeeddcc', [3]]);
  assert.is(decodeLinkFrame(bytes(0x20, 1, 2, 3, 4)), undefined);
  assert.is(decodeLinkFrame(bytes(0x11, 1, 2, 3, 4, 5)), undefined);
});

/** Random streams, and valid streams with bytes flipped, dropped, repeated or cut. */
function* streams(count: number, seed: number, valid: () => Uint8Array): Generator<Uint8Array> {
  const random = new SeededRandom(seed);
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) {
      yield Uint8Array.from({ length: random.int(300) }, () => random.int(256));
      continue;
    }
    const s = [...valid()];
    const mutations = 1 + random.int(4);
    for (let m = 0; m < mutations && s.length; m++) {
      const at = random.int(s.length);
      switch (random.int(4)) {
        case 0: s[at] = random.int(256); break;
        case 1: s.splice(at, 1); break;
        case 2: s.splice(at, 0, ...s.slice(at, at + random.int(8))); break;
        default: s.length = at;
      }
    }
    yield Uint8Array.from(s);
  }
}

const FUZZ = 100_000;
const pick = <T>(random: SeededRandom, items: T[]): T => items[random.int(items.length)]!;

test(`fuzz: ${FUZZ} streams through one KISS deframer and the RNode parser; memory stays bounded, rejects counted`, () => {
  const random = new SeededRandom(11);
  const deframer = new KissDeframer(300);
  let unknown = 0;
  let parsed = 0;
  const heapBefore = process.memoryUsage().heapUsed;
  const valid = () => Uint8Array.from([
    ...encodeKiss(pick(random, [0x00, 0x01, 0x08, 0x23, 0x50, 0x90]), Uint8Array.from({ length: random.int(6) }, () => random.int(256))),
    ...encodeKiss(0x00, Uint8Array.from({ length: random.int(260) }, () => pick(random, [FEND, FESC, random.int(256)]))),
  ]);
  for (const stream of streams(FUZZ, 1, valid)) {
    for (const frame of deframer.push(stream)) {
      if (frame.data.length > 300) throw new Error('frame over the bound');
      if (frame.command === 0) continue;
      if (parseRNodeFrame(frame.command, frame.data)) parsed++;
      else unknown++;
    }
  }
  const c = deframer.counters;
  assert.ok(c.frames > 10_000, `frames ${c.frames}`);
  assert.ok(c.badEscape > 1000 && c.oversize > 100 && c.noiseBytes > 0, JSON.stringify(c));
  assert.ok(parsed > 100 && unknown > 100, `${parsed} parsed, ${unknown} unknown`);
  assert.ok(process.memoryUsage().heapUsed - heapBefore < 64 * 1024 * 1024);
});

test(`fuzz: ${FUZZ} streams through the AT line splitter and parser; every line is parsed or counted`, () => {
  const random = new SeededRandom(12);
  const splitter = new LineSplitter();
  let rejected = 0;
  let accepted = 0;
  const valid = () => {
    const data = encodePayload(Uint8Array.from({ length: random.int(180) }, () => random.int(256)));
    const line = pick(random, ['+OK', '+READY', `+ERR=${random.int(30)}`, `+RCV=${random.int(65536)},${data.length},${data},-${random.int(140)},${random.int(20) - 10}`]);
    return new TextEncoder().encode(`${line}\r\n`);
  };
  for (const stream of streams(FUZZ, 2, valid)) {
    for (const line of splitter.push(stream)) {
      const parsed = parseReyaxLine(line);
      if (!parsed) rejected++;
      else {
        accepted++;
        if (parsed.t === 'rcv') decodePayload(parsed.data);
      }
    }
  }
  assert.is(splitter.counters.lines, accepted + rejected);
  assert.ok(accepted > 100 && rejected > 1000, `${accepted} accepted, ${rejected} rejected`);
  assert.ok(splitter.counters.nonText > 1000, JSON.stringify(splitter.counters));
});

test.run();
