// The mesh simulator behind `iop-agent sim`: N boxes on a simulated LoRa channel in
// virtual time, placed by topology, measured over the middle of the run; the same seed
// is then run with managed flooding for comparison, with readings as they are and
// compressed. The channel is EU868 869.525 MHz with its 10 % duty cycle enforced on every
// radio. What runs on each box (router, forwarder, relay bridge) is given as `boxes`: the
// agent passes its own classes (agent/mesh/sim-boxes.ts), since mesh/ knows nothing of
// the agent.
import type { Link } from '../drivers/link.ts';
import { SimMedium, type SimLink } from '../drivers/sim/medium.ts';
import { SF7_BW250 } from '../drivers/radio/lora-airtime.ts';
import { SeededRandom } from '../drivers/sim/random.ts';
import { VirtualClock } from '../drivers/sim/virtual-clock.ts';
import { FloodNode } from './flooding.ts';
import { envelopeAgainst } from './compression.ts';
import type { MeshNode, MeshTimers } from './node.ts';
import { NODE_ID_BYTES } from './packet.ts';
import { boxTotals, Ledger, meshTotals, peakHourShare, round, snapshot } from './sim-measure.ts';

export type Topology = 'line' | 'ring' | 'grid' | 'random';

/** One simulated box: its router, started by start(), and the readings it makes. */
export interface SimBox {
  readonly node: MeshNode;
  start(): void;
  /** the box makes its reading number n (from 0) now */
  read(n: number): void;
  /** what the box's own parts counted (summed over the boxes into `box_totals`) */
  counters?(): Record<string, number>;
}

/** What one run gives the boxes. */
export interface SimWorld {
  clock: VirtualClock;
  random: () => number;
  /** the mesh key shared by every box */
  key: Uint8Array;
  /** reading n of box `origin` reached the gateway (now) */
  arrived(origin: number, n: number): void;
}

/** What runs on the boxes, and what they send. */
export interface SimBoxes {
  /** reading n of box `origin`, as the flooding baseline sends it */
  reading(origin: number, n: number): Uint8Array;
  /** the boxes of one run: box `index` on its radio link, an uplink box or not */
  run(world: SimWorld): (index: number, link: Link, uplink: boolean) => SimBox;
}

export interface SimOptions {
  nodes: number;
  topology: Topology;
  seed: number;
  /** virtual seconds simulated; the first third is warm-up */
  seconds: number;
  readingIntervalS?: number;
  rangeM?: number;
  boxes: SimBoxes;
  /** enforce the channel's duty cycle on every radio (default true) */
  dutyCycle?: boolean;
  /** dB a frame must exceed the sum of overlapping ones by to survive (default 6) */
  captureDb?: number;
  /** how far below sensitivity a frame still interferes, dB (default 10) */
  interferenceDb?: number;
  /**
   * random values the mesh run consumes before its boxes start (default 0: the seed's
   * figures as they always were): the same topology with other timings, to tell a change
   * from the noise of one run (the flooding baselines are left as they are)
   */
  perturb?: number;
}

export interface SimFigures {
  /** null for flooding, which has no routes to converge */
  converged_s: number | null;
  delivery_ratio: number;
  tx_per_delivered: number;
  /** null for flooding, which sends no control traffic */
  control_bytes_per_node_s: number | null;
  airtime_share_per_node: number;
  /** the busiest box's share of airtime over the measured window */
  airtime_share_max: number;
  /**
   * the busiest box's share of its most used rolling hour (the duty-cycle ledger, sampled
   * each minute): what the regional budget limits; null when no duty cycle is enforced
   */
  airtime_peak_hour_share: number | null;
  latency_ms_p50: number;
  latency_ms_p99: number;
}

export interface SimResult extends SimFigures {
  nodes: number;
  topology: Topology;
  seed: number;
  seconds: number;
  uplinks: number;
  generated: number;
  /** boxes with a radio path to an uplink (readings of the others are not counted) */
  reachable: number;
  /** managed flooding, readings as they are */
  baseline: SimFigures;
  /** managed flooding, each reading deflated against its origin's previous one */
  baseline_compressed: SimFigures;
  /** the share of airtime the sub-band allows each radio (0.1 on 869.4-869.65 MHz), null if not enforced */
  airtime_budget_share: number | null;
  /** each box's share of airtime over the measured window (the mesh run) */
  airtime_share_by_box: number[];
  /** the mesh's transmissions per delivered reading, by kind: hop-by-hop data, hop acks, routing control */
  frames_per_delivered: { data: number; ack: number; control: number };
  /**
   * the mesh's frames dropped, drop notices sent (by relays) and messages sent again on
   * them (by origins), and control TLVs sent over the whole run, summed over the boxes
   * (where it loses readings, what its control traffic is)
   */
  mesh_totals: { dropped: { noRoute: number; hopLimit: number; unacknowledged: number }; drop_notices: { sent: number; resent: number }; control_tlvs: Record<string, number> };
  /** what the boxes' own parts counted over the whole run, summed over the boxes (the forwarder's publishes and resends by cause, the bridges' receipts); max_* keys are maxima */
  box_totals: Record<string, number>;
  wall_s: number;
  speedup: number;
}

/** Radio-friendly timers: a LoRa channel has little room for control traffic. */
export const LORA_TIMERS: MeshTimers = { helloMinMs: 4000, helloMaxMs: 300_000, updateMinMs: 8000, updateMaxMs: 300_000, ackTimeoutMs: 300, helloMissesDown: 4 };
const MESH_KEY = new Uint8Array(32).fill(7);
/** A reading every five minutes: what a box with slow-changing sensors sends. */
export const DEFAULT_READING_INTERVAL_S = 300;
export function placeNodes(topology: Topology, n: number, range: number, random: SeededRandom): { x: number; y: number }[] {
  const step = range * 0.7;
  switch (topology) {
    case 'line':
      return Array.from({ length: n }, (_, i) => ({ x: i * step, y: 0 }));
    case 'ring': {
      const radius = n < 3 ? step : step / (2 * Math.sin(Math.PI / n));
      return Array.from({ length: n }, (_, i) => ({ x: radius * Math.cos((2 * Math.PI * i) / n), y: radius * Math.sin((2 * Math.PI * i) / n) }));
    }
    case 'grid': {
      const side = Math.ceil(Math.sqrt(n));
      return Array.from({ length: n }, (_, i) => ({ x: (i % side) * step, y: Math.floor(i / side) * step }));
    }
    case 'random': {
      // About eight boxes in range of each, as in a town with a box every few streets.
      const side = Math.sqrt((n * Math.PI * range * range) / 8);
      return Array.from({ length: n }, () => ({ x: random.next() * side, y: random.next() * side }));
    }
  }
}

function uplinkIndexes(topology: Topology, n: number, random: SeededRandom): Set<number> {
  if (topology !== 'random') return new Set([0]);
  const wanted = Math.max(1, Math.round(n / 25));
  const out = new Set<number>();
  while (out.size < wanted) out.add(random.int(n));
  return out;
}

interface World {
  clock: VirtualClock;
  medium: SimMedium;
  random: SeededRandom;
  uplinks: Set<number>;
  positions: { x: number; y: number }[];
}

function makeWorld(options: SimOptions): World {
  const random = new SeededRandom(options.seed);
  const range = options.rangeM ?? 2000;
  const positions = placeNodes(options.topology, options.nodes, range, random);
  const uplinks = uplinkIndexes(options.topology, options.nodes, random);
  const clock = new VirtualClock();
  const medium = new SimMedium({
    clock, random, rangeM: range, baseLoss: 0.02, profile: SF7_BW250, region: 'EU868', frequencyHz: 869_525_000,
    dutyCycle: options.dutyCycle ?? true, ...(options.captureDb !== undefined ? { captureDb: options.captureDb } : {}),
    ...(options.interferenceDb !== undefined ? { interferenceDb: options.interferenceDb } : {}),
  });
  return { clock, medium, random, uplinks, positions };
}

export function simulate(options: SimOptions): SimResult {
  const started = performance.now();
  const mesh = runMesh(options);
  const baseline = runFlooding(options, false);
  const compressed = runFlooding(options, true);
  const wall = (performance.now() - started) / 1000;
  return {
    nodes: options.nodes, topology: options.topology, seed: options.seed, seconds: options.seconds, uplinks: mesh.uplinks, generated: mesh.generated, reachable: mesh.reachable,
    ...mesh.figures, baseline: baseline.figures, baseline_compressed: compressed.figures,
    airtime_budget_share: mesh.budgetShare, airtime_share_by_box: mesh.shares,
    frames_per_delivered: mesh.byKind, mesh_totals: mesh.totals, box_totals: mesh.boxTotals, wall_s: Number(wall.toFixed(2)), speedup: Number(((3 * options.seconds) / wall).toFixed(1)),
  };
}

function nodeIdFor(index: number, random: SeededRandom): Uint8Array {
  const id = random.bytes(NODE_ID_BYTES);
  new DataView(id.buffer).setUint16(0, index);
  return id;
}

/** The placed radios and the measuring window of one run. */
function setUp(options: SimOptions) {
  const world = makeWorld(options);
  const links = world.positions.map((p) => world.medium.add(p.x, p.y));
  world.medium.connect();
  const endMs = options.seconds * 1000;
  const windowFrom = endMs / 3;
  const windowTo = endMs - 120_000 > windowFrom ? endMs - 120_000 : endMs * 0.8;
  return {
    ...world, links, endMs, windowFrom, windowTo,
    ledger: new Ledger(windowFrom, windowTo),
    intervalMs: (options.readingIntervalS ?? DEFAULT_READING_INTERVAL_S) * 1000,
    reachable: reachableFromUplinks(world.medium, world.uplinks),
  };
}

/** The mesh alone on one seed, without the flooding baselines (what simulate() adds to it). */
export function runMesh(options: SimOptions): {
  figures: SimFigures; byKind: SimResult['frames_per_delivered']; totals: SimResult['mesh_totals']; boxTotals: SimResult['box_totals']; uplinks: number; generated: number; reachable: number; shares: number[]; budgetShare: number | null;
} {
  const { clock, medium, random, uplinks, links, endMs, windowFrom, windowTo, ledger, intervalMs, reachable } = setUp(options);
  let generated = 0;
  for (let i = 0; i < (options.perturb ?? 0); i++) random.next();
  const box = options.boxes.run({ clock, random: () => random.next(), key: MESH_KEY, arrived: (origin, n) => ledger.arrive(`${origin}/${n}`, clock.now()) });
  const boxes = links.map((link, i) => box(i, link, uplinks.has(i)));
  const nodes = boxes.map((b) => b.node);
  boxes.forEach((b) => b.start());
  boxes.forEach((b, i) => {
    // Uplink boxes send their own readings over MQTT: not the mesh's to carry.
    if (uplinks.has(i)) return;
    readEvery(clock, random, intervalMs, (n) => {
      generated++;
      // A box with no radio path to any uplink cannot deliver by any protocol: not counted.
      if (reachable.has(i)) ledger.make(`${i}/${n}`, clock.now());
      b.read(n);
    });
  });

  // Converged: every box that can reach an uplink at all has a route to one.
  let converged: number | null = null;
  const check = () => {
    if (converged === null && nodes.every((node, i) => uplinks.has(i) || !reachable.has(i) || node.bestUplink())) converged = clock.now() / 1000;
    else if (converged === null) clock.setTimeout(check, 100);
  };
  clock.setTimeout(check, 100);
  const peak = peakHourShare(clock, links);

  clock.runUntil(windowFrom);
  const before = snapshot(nodes, medium);
  const airtimeBefore = links.map((l) => l.stats.airtimeMs);
  clock.runUntil(windowTo);
  const during = snapshot(nodes, medium);
  const shares = links.map((l, i) => round((l.stats.airtimeMs - airtimeBefore[i]!) / (windowTo - windowFrom), 5));
  clock.runUntil(endMs);

  const windowS = (windowTo - windowFrom) / 1000;
  const f = ledger.figures();
  const per = (k: 'data' | 'ack' | 'control') => round((during[k] - before[k]) / Math.max(1, f.delivered), 2);
  return {
    uplinks: uplinks.size,
    generated,
    reachable: reachable.size,
    shares,
    budgetShare: links[0]?.duty?.band.dutyCycle ?? null,
    byKind: { data: per('data'), ack: per('ack'), control: per('control') },
    totals: meshTotals(nodes),
    boxTotals: boxTotals(boxes),
    figures: {
      converged_s: converged,
      delivery_ratio: round(f.ratio, 4),
      tx_per_delivered: round((during.frames - before.frames) / Math.max(1, f.delivered), 2),
      control_bytes_per_node_s: round((during.controlBytes - before.controlBytes) / nodes.length / windowS, 2),
      airtime_share_per_node: round((during.airtimeMs - before.airtimeMs) / nodes.length / (windowS * 1000), 5),
      airtime_share_max: Math.max(0, ...shares),
      airtime_peak_hour_share: peak(),
      latency_ms_p50: Math.round(f.p50),
      latency_ms_p99: Math.round(f.p99),
    },
  };
}

/**
 * Managed flooding on the same seed. `compress`: each reading deflated against its
 * origin's previous one, the uplink box assumed to hold that reference (flooding has no
 * way back to confirm it, so this favours the baseline).
 */
function runFlooding(options: SimOptions, compress: boolean): { figures: SimFigures } {
  const { clock, medium, random, uplinks, links, endMs, windowFrom, windowTo, ledger, intervalMs, reachable } = setUp(options);
  const catalogue = new Catalogue(options.boxes);
  const compressedKeys = new Map<string, string>();
  links.forEach((link, i) => {
    const node = new FloodNode({ id: nodeIdFor(i, random), link, clock, key: MESH_KEY, random: () => random.next(), profile: medium.options.profile });
    node.uplink = uplinks.has(i);
    node.onDelivered((_origin, payload) => {
      const key = compress ? compressedKeys.get(Buffer.from(payload).toString('base64')) : catalogue.readingKey(payload);
      if (key) ledger.arrive(key, clock.now());
    });
    if (node.uplink) return;
    let previous: Uint8Array | undefined;
    readEvery(clock, random, intervalMs, (n) => {
      const { bytes, key } = catalogue.reading(i, n);
      if (reachable.has(i)) ledger.make(key, clock.now());
      const sent = compress && previous ? envelopeAgainst(previous, bytes) : bytes;
      if (compress) compressedKeys.set(Buffer.from(sent).toString('base64'), key);
      previous = bytes;
      node.send(sent);
    });
  });
  const peak = peakHourShare(clock, links);
  clock.runUntil(windowFrom);
  const before = { ...medium.totals };
  const airtimeBefore = links.map((l) => l.stats.airtimeMs);
  clock.runUntil(windowTo);
  const during = { ...medium.totals };
  const shares = links.map((l, i) => (l.stats.airtimeMs - airtimeBefore[i]!) / (windowTo - windowFrom));
  clock.runUntil(endMs);
  const windowS = (windowTo - windowFrom) / 1000;
  const f = ledger.figures();
  return {
    figures: {
      converged_s: null,
      delivery_ratio: round(f.ratio, 4),
      tx_per_delivered: round((during.frames - before.frames) / Math.max(1, f.delivered), 2),
      control_bytes_per_node_s: null,
      airtime_share_per_node: round((during.airtimeMs - before.airtimeMs) / links.length / (windowS * 1000), 5),
      airtime_share_max: round(Math.max(0, ...shares), 5),
      airtime_peak_hour_share: peak(),
      latency_ms_p50: Math.round(f.p50),
      latency_ms_p99: Math.round(f.p99),
    },
  };
}

/** Samples every radio's rolling-hour ledger each minute; returns the highest share seen. */
/** A box's readings: the first at a random moment of the first interval, then about one an interval. */
function readEvery(clock: VirtualClock, random: SeededRandom, intervalMs: number, read: (n: number) => void): void {
  let n = 0;
  const tick = () => {
    read(n++);
    clock.setTimeout(tick, intervalMs * (0.9 + 0.2 * random.next()));
  };
  clock.setTimeout(tick, random.next() * intervalMs);
}

/** Which box and number the readings flooded through the mesh stand for. */
class Catalogue {
  private readonly boxes: SimBoxes;
  private readonly readings = new Map<string, string>();
  constructor(boxes: SimBoxes) {
    this.boxes = boxes;
  }
  reading(origin: number, n: number): { bytes: Uint8Array; key: string } {
    const bytes = this.boxes.reading(origin, n);
    const key = `${origin}/${n}`;
    this.readings.set(Buffer.from(bytes).toString('base64'), key);
    return { bytes, key };
  }
  readingKey(bytes: Uint8Array): string | undefined {
    return this.readings.get(Buffer.from(bytes).toString('base64'));
  }
}

function reachableFromUplinks(medium: SimMedium, uplinks: Set<number>): Set<number> {
  const seen = new Set<number>(uplinks);
  const queue = [...uplinks];
  while (queue.length) {
    const i = queue.shift()!;
    for (const j of medium.inRange(i)) if (!seen.has(j)) {
      seen.add(j);
      queue.push(j);
    }
  }
  return seen;
}
