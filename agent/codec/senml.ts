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

export interface SenmlPack {
  /** absolute Unix time in seconds */
  time: number;
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
  t: number;
}

const NAME = /^[A-Za-z0-9][-:./_A-Za-z0-9]*$/;
const ABSOLUTE_TIME = 2 ** 28; // RFC 8428: smaller times are relative to now
const SENML_VERSION = 10;

export function encodeSenmlPack(pack: SenmlPack): Uint8Array {
  if (pack.records.length === 0) throw new Error('a SenML pack needs at least one record');
  const maps = pack.records.map((record, index) => {
    const map = new Map<number, unknown>();
    if (index === 0) {
      if (pack.baseName) map.set(SENML.bn, pack.baseName);
      map.set(SENML.bt, pack.time);
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
    record.t = rawTime < ABSOLUTE_TIME ? nowSeconds + rawTime : rawTime;
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
