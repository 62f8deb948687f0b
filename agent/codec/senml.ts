// SenML (RFC 8428) packs in CBOR with the RFC's integer labels.
import { encodeCompactCbor } from './cbor.ts';

export const SENML = {
  bver: -1, bn: -2, bt: -3, bu: -4, bv: -5, bs: -6,
  n: 0, u: 1, v: 2, vs: 3, vb: 4, s: 5, t: 6, ut: 7, vd: 8,
} as const;

/** A record as a sensor produces it: name relative to the pack, time relative to the pack time. */
export interface SenmlRecord {
  n: string;
  u?: string;
  v?: number;
  vs?: string;
  vb?: boolean;
  s?: number;
  /** seconds relative to the pack time; omitted means the pack time */
  t?: number;
}

/** How far the box trusted its clock (docs/protocol.md, "Time"). */
export type TimeQuality = 'ntp' | 'gps' | 'none';

/** Text labels of this agent's time extension (unknown labels are ignored by RFC 8428 readers). */
export const TIME_LABELS = { quality: 'tq', uptime: 'up', boot: 'boot' } as const;

export interface SenmlPack {
  /** absolute Unix time in seconds; absent when the box's clock was not trusted */
  time?: number | undefined;
  /** written as `tq`; absent means ntp (packs from before the extension) */
  timeQuality?: TimeQuality | undefined;
  /** seconds since the box booted, written as `up` */
  uptime?: number | undefined;
  /** which boot `uptime` counts from (8 hex digits), written as `boot` */
  boot?: string | undefined;
  baseName?: string;
  records: readonly SenmlRecord[];
}

/** A record after RFC 8428 section 4.6 resolution: full name, absolute time. */
export interface ResolvedRecord {
  n: string;
  u?: string;
  v?: number;
  vs?: string;
  vb?: boolean;
  vd?: string;
  s?: number;
  /** Unix seconds; absent when the box did not trust its clock (tq none, no bt): see up and boot. */
  t?: number;
  /** The pack's time quality when it says one; `none`: t is the verifier's time, not the reading's. */
  tq?: TimeQuality;
  /** Seconds since the box booted, when the pack carries it. */
  up?: number;
  boot?: string;
}

const NAME = /^[A-Za-z0-9][-:./_A-Za-z0-9]*$/;
const ABSOLUTE_TIME = 2 ** 28; // RFC 8428: smaller times are relative to now
const SENML_VERSION = 10;

export function encodeSenmlPack(pack: SenmlPack): Uint8Array {
  if (pack.records.length === 0) throw new Error('a SenML pack needs at least one record');
  const maps = pack.records.map((record, index) => {
    const map = new Map<number | string, unknown>();
    if (index === 0) {
      if (pack.baseName) map.set(SENML.bn, pack.baseName);
      if (pack.time !== undefined) map.set(SENML.bt, pack.time);
      if (pack.timeQuality !== undefined && pack.timeQuality !== 'ntp') map.set(TIME_LABELS.quality, pack.timeQuality);
      if (pack.uptime !== undefined) map.set(TIME_LABELS.uptime, pack.uptime);
      if (pack.boot !== undefined) map.set(TIME_LABELS.boot, pack.boot);
    }
    map.set(SENML.n, record.n);
    if (record.u !== undefined) map.set(SENML.u, record.u);
    if (record.v !== undefined) map.set(SENML.v, record.v);
    if (record.vs !== undefined) map.set(SENML.vs, record.vs);
    if (record.vb !== undefined) map.set(SENML.vb, record.vb);
    if (record.s !== undefined) map.set(SENML.s, record.s);
    if (record.t !== undefined && record.t !== 0) map.set(SENML.t, record.t);
    return map;
  });
  return encodeCompactCbor(maps);
}

export class SenmlError extends Error {
  override name = 'SenmlError';
}

/** Validates a decoded SenML pack and resolves names, units, values and times. */
export function resolveSenmlPack(decoded: unknown, nowSeconds: number): ResolvedRecord[] {
  if (!Array.isArray(decoded)) throw new SenmlError('SenML pack is not a CBOR array');
  if (decoded.length === 0) throw new SenmlError('SenML pack is empty');
  let baseName = '';
  let baseTime = 0;
  let baseUnit: string | undefined;
  let baseValue = 0;
  let baseSum = 0;
  let quality: TimeQuality | undefined;
  let uptime: number | undefined;
  let boot: string | undefined;
  return decoded.map((item, index): ResolvedRecord => {
    const where = `SenML record ${index}`;
    if (!(item instanceof Map)) throw new SenmlError(`${where} is not a CBOR map`);
    const field = (label: number) => item.get(label);
    for (const key of item.keys()) {
      if (typeof key === 'string' && key.endsWith('_')) {
        throw new SenmlError(`${where} has must-understand field '${key}'`);
      }
      if (typeof key !== 'number' && typeof key !== 'string') throw new SenmlError(`${where} has a label that is neither integer nor text`);
    }
    const bver = field(SENML.bver);
    if (bver !== undefined && (typeof bver !== 'number' || bver > SENML_VERSION)) {
      throw new SenmlError(`${where} needs SenML version ${String(bver)}, this reader knows ${SENML_VERSION}`);
    }
    const bn = field(SENML.bn);
    if (bn !== undefined) baseName = text(bn, `${where} bn`);
    const bt = field(SENML.bt);
    if (bt !== undefined) baseTime = num(bt, `${where} bt`);
    const bu = field(SENML.bu);
    if (bu !== undefined) baseUnit = text(bu, `${where} bu`);
    const bv = field(SENML.bv);
    if (bv !== undefined) baseValue = num(bv, `${where} bv`);
    const bs = field(SENML.bs);
    if (bs !== undefined) baseSum = num(bs, `${where} bs`);

    const tq = item.get(TIME_LABELS.quality);
    if (tq !== undefined) {
      if (tq !== 'ntp' && tq !== 'gps' && tq !== 'none') throw new SenmlError(`${where} tq is not ntp, gps or none`);
      quality = tq;
    }
    const up = item.get(TIME_LABELS.uptime);
    if (up !== undefined) uptime = num(up, `${where} up`);
    const bootId = item.get(TIME_LABELS.boot);
    if (bootId !== undefined) boot = text(bootId, `${where} boot`);

    const n = field(SENML.n);
    const name = baseName + (n === undefined ? '' : text(n, `${where} n`));
    if (!NAME.test(name)) throw new SenmlError(`${where} has invalid name '${name}'`);
    const rawTime = baseTime + (field(SENML.t) === undefined ? 0 : num(field(SENML.t), `${where} t`));
    const record = { n: name } as ResolvedRecord;
    const u = field(SENML.u);
    const unit = u === undefined ? baseUnit : text(u, `${where} u`);
    if (unit !== undefined) record.u = unit;

    let values = 0;
    const v = field(SENML.v);
    if (v !== undefined) { record.v = baseValue + num(v, `${where} v`); values++; }
    else if (bv !== undefined && field(SENML.vs) === undefined && field(SENML.vb) === undefined && field(SENML.vd) === undefined) {
      record.v = baseValue; values++;
    }
    const vs = field(SENML.vs);
    if (vs !== undefined) { record.vs = text(vs, `${where} vs`); values++; }
    const vb = field(SENML.vb);
    if (vb !== undefined) {
      if (typeof vb !== 'boolean') throw new SenmlError(`${where} vb is not a boolean`);
      record.vb = vb; values++;
    }
    const vd = field(SENML.vd);
    if (vd !== undefined) {
      if (!(vd instanceof Uint8Array)) throw new SenmlError(`${where} vd is not a byte string`);
      record.vd = base64url(vd); values++;
    }
    const s = field(SENML.s);
    if (s !== undefined) record.s = baseSum + num(s, `${where} s`);
    if (values > 1) throw new SenmlError(`${where} has more than one value`);
    if (values === 0 && s === undefined) throw new SenmlError(`${where} has neither a value nor a sum`);
    // A pack that says its box had no trusted clock gets no time, not the verifier's.
    if (!(quality === 'none' && rawTime < ABSOLUTE_TIME)) record.t = rawTime < ABSOLUTE_TIME ? nowSeconds + rawTime : rawTime;
    if (quality !== undefined) record.tq = quality;
    if (uptime !== undefined) record.up = uptime + (rawTime - baseTime);
    if (boot !== undefined) record.boot = boot;
    return record;
  });
}

function text(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new SenmlError(`${where} is not a text string`);
  return value;
}

function num(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new SenmlError(`${where} is not a finite number`);
  return value;
}

function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
