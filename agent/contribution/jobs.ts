// Data jobs (docs/rewards.md, section 5): a partner's signed request for a quantity over
// an area at an interval; allocation to paired boxes that can serve it, the box's answer,
// and which slots were served by verified readings, with outliers flagged against the
// neighbours' values in the same slot.
import { getResolution, isValidCell, latLngToCell } from 'h3-js';
import { type Location } from './geo.ts';
import { judgeSlot, DEFAULT_OUTLIER_RULES, type OutlierRules, type SlotValue } from './outliers.ts';

export interface Quantity {
  /** SenML record name of the quantity (the sensor's `quantity`: temperature, humidity, ...) */
  name: string;
  /** SenML unit ("Cel", "%RH", "Pa", ...) */
  unit: string;
}

export type Area = { h3: string[] } | { box: { south: number; west: number; north: number; east: number } };

export interface Job {
  id: string;
  quantity: Quantity;
  area: Area;
  intervalS: number;
  /** Unix seconds, the first slot's start and the end of the last */
  from: number;
  to: number;
  /** per slot served, decimal, the token's smallest unit */
  rewardPerSlot: string;
}

const ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** Checks a job's fields; throws an Error naming the field. */
export function parseJob(value: unknown, where = 'job'): Job {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: expected an object`);
  const v = value as Record<string, unknown>;
  const fail = (field: string, want: string): never => {
    throw new Error(`${where}: ${field} ${want}`);
  };
  if (typeof v.id !== 'string' || !ID.test(v.id)) fail('id', 'must be 1 to 64 letters, digits, _ . or -');
  const q = v.quantity as Record<string, unknown> | undefined;
  if (!q || typeof q.name !== 'string' || typeof q.unit !== 'string') fail('quantity', 'must be {name, unit} (SenML)');
  const area = parseArea(v.area, where);
  for (const field of ['intervalS', 'from', 'to'] as const) {
    if (typeof v[field] !== 'number' || !Number.isInteger(v[field]) || (v[field] as number) < (field === 'intervalS' ? 1 : 0)) fail(field, 'must be a whole number (seconds)');
  }
  if ((v.to as number) <= (v.from as number)) fail('to', 'must be after from');
  if (typeof v.rewardPerSlot !== 'string' || !/^\d+$/.test(v.rewardPerSlot)) fail('rewardPerSlot', 'must be a decimal string of a whole number');
  return { id: v.id as string, quantity: { name: q!.name as string, unit: q!.unit as string }, area, intervalS: v.intervalS as number, from: v.from as number, to: v.to as number, rewardPerSlot: v.rewardPerSlot as string };
}

function parseArea(value: unknown, where: string): Area {
  const a = value as Record<string, unknown> | undefined;
  if (a && Array.isArray(a.h3)) {
    if (a.h3.length === 0 || a.h3.some((c) => typeof c !== 'string' || !isValidCell(c))) throw new Error(`${where}: area.h3 must list valid H3 cells`);
    return { h3: a.h3 as string[] };
  }
  const b = a?.box as Record<string, unknown> | undefined;
  if (b && ['south', 'west', 'north', 'east'].every((k) => typeof b[k] === 'number')) {
    const box = b as { south: number; west: number; north: number; east: number };
    if (box.south > box.north || box.south < -90 || box.north > 90) throw new Error(`${where}: area.box south must be at most north, within ±90`);
    return { box };
  }
  throw new Error(`${where}: area must be {h3: [cells]} or {box: {south, west, north, east}}`);
}

export function inArea(area: Area, at: Location): boolean {
  if ('h3' in area) return area.h3.some((cell) => latLngToCell(at.lat, at.lon, getResolution(cell)) === cell);
  const { south, west, north, east } = area.box;
  const inLon = west <= east ? at.lon >= west && at.lon <= east : at.lon >= west || at.lon <= east; // a box across the antimeridian
  return at.lat >= south && at.lat <= north && inLon;
}

export interface BoxOffer {
  device: string;
  location: Location | undefined;
  quantities: readonly Quantity[];
}

/** Paired boxes with a sensor of the job's quantity and a location inside its area. */
export function allocate(job: Job, boxes: readonly BoxOffer[]): string[] {
  return boxes.filter((b) => b.location && inArea(job.area, b.location) && b.quantities.some((q) => q.name === job.quantity.name && q.unit === job.quantity.unit)).map((b) => b.device);
}

export type JobAnswer = { accept: true; intervalS: number } | { accept: false; reason: string };

/** A box's answer: it samples at the job's interval only if it has the sensor and may sample that often. */
export function answerJob(job: Job, box: { quantities: readonly Quantity[]; minIntervalS: number; nowS: number }): JobAnswer {
  if (!box.quantities.some((q) => q.name === job.quantity.name && q.unit === job.quantity.unit)) return { accept: false, reason: `no sensor of ${job.quantity.name} in ${job.quantity.unit}` };
  if (job.intervalS < box.minIntervalS) return { accept: false, reason: `interval ${job.intervalS} s is below this box's limit of ${box.minIntervalS} s (duty cycle, power)` };
  if (job.to <= box.nowS) return { accept: false, reason: 'the job has ended' };
  return { accept: true, intervalS: job.intervalS };
}

export interface JobCredit {
  slotsAllocated: number;
  slotsServed: number;
  judged: number;
  outliers: number;
}

/** One job's readings within one epoch: which slots each allocated box served, and outliers. */
export class JobLedger {
  readonly job: Job;
  private allocated: Set<string>;
  private readonly fromS: number;
  private readonly toS: number;
  private readonly rules: OutlierRules;
  /** slot -> device -> value (the first verified reading in the slot) */
  private readonly slots = new Map<number, Map<string, SlotValue>>();

  constructor(job: Job, allocated: readonly string[], epoch: { startS: number; endS: number }, rules: OutlierRules = DEFAULT_OUTLIER_RULES) {
    this.job = job;
    this.allocated = new Set(allocated);
    this.fromS = Math.max(job.from, epoch.startS);
    this.toS = Math.min(job.to, epoch.endS);
    this.rules = rules;
  }

  /** The boxes the job is allocated to now; slots already served stay counted. */
  allocate(devices: readonly string[]): void {
    this.allocated = new Set(devices);
  }

  /** A verified reading; false when it serves no slot (not allocated, other quantity, outside the job or the epoch). */
  add(reading: { device: string; timeS: number; name: string; unit: string; value: number; location?: Location | undefined }): boolean {
    if (!this.allocated.has(reading.device) || reading.name !== this.job.quantity.name || reading.unit !== this.job.quantity.unit) return false;
    if (reading.timeS < this.fromS || reading.timeS >= this.toS || !Number.isFinite(reading.value)) return false;
    const slot = Math.floor((reading.timeS - this.job.from) / this.job.intervalS);
    let values = this.slots.get(slot);
    if (!values) this.slots.set(slot, values = new Map());
    if (values.has(reading.device)) return false;
    values.set(reading.device, { device: reading.device, value: reading.value, location: reading.location });
    return true;
  }

  /** Per allocated device: slots in the epoch, served, judged against neighbours, flagged; and the flags for review. */
  settle(): { credits: Map<string, JobCredit>; flagged: { device: string; slot: number; value: number }[] } {
    const first = Math.ceil((this.fromS - this.job.from) / this.job.intervalS);
    const end = Math.ceil((this.toS - this.job.from) / this.job.intervalS);
    const slotsAllocated = Math.max(0, end - first);
    const credits = new Map<string, JobCredit>();
    for (const device of this.allocated) credits.set(device, { slotsAllocated, slotsServed: 0, judged: 0, outliers: 0 });
    // A box that served slots and was then released (it declined, or left the area) is judged on what it served.
    for (const values of this.slots.values()) for (const device of values.keys()) if (!credits.has(device)) credits.set(device, { slotsAllocated, slotsServed: 0, judged: 0, outliers: 0 });
    const flagged: { device: string; slot: number; value: number }[] = [];
    for (const [slot, values] of this.slots) {
      const list = [...values.values()];
      const { judged, flagged: outliers } = judgeSlot(list, this.rules);
      for (const v of list) {
        const c = credits.get(v.device)!;
        c.slotsServed++;
        if (judged.has(v.device)) c.judged++;
        if (outliers.has(v.device)) {
          c.outliers++;
          flagged.push({ device: v.device, slot, value: v.value });
        }
      }
    }
    return { credits, flagged };
  }
}
