// `iop-agent sim --cheaters N`: the simulator's boxes with contribution on. Each box
// beacons on its simulated radio and witnesses what it hears (agent/contribution/
// beaconer.ts); boxes without uplink send both through the mesh (data type `report`) to
// their uplink box; uplink boxes attest what they relayed. A gateway at the end of the
// run judges it all with the same modules as agent/gateway, as one epoch the length of
// the run. N boxes cheat: they witness their own beacons, claim relays they did not
// carry, and invent their job values (half a constant, half random numbers).
//
// Job values are modelled, not read from the simulated readings (whose temperatures are
// independent random walks per box): a smooth field the same for every box (a daily
// wave) plus 0.3 °C of noise, against which neighbours can be compared.
import { SeededRandom } from '../../drivers/sim/random.ts';
import { decodePacket } from '../../mesh/packet.ts';
import { placeNodes, type SimBoxes, type Topology } from '../../mesh/simulation.ts';
import { messageHash } from '../codec/chain.ts';
import type { MeshConfig } from '../config/schema.ts';
import { shippedBoxes } from '../mesh/sim-boxes.ts';
import { signedTraffic } from '../mesh/sim-traffic.ts';
import { BeaconLink } from './beacon-link.ts';
import { Beaconer } from './beaconer.ts';
import { scoreDevices, type ScoredDevice } from './epoch.ts';
import { offsetLocation, type Location } from './geo.ts';
import { JobLedger, type Job } from './jobs.ts';
import { beaconerOf, beaconId, openContribution, signContribution, type ContributionMessage } from './messages.ts';
import { DEFAULT_PRESENCE_RULES, PresenceLedger } from './presence.ts';
import { RelayBatcher, RelayLedger } from './relay.ts';
import { ReportQueue } from './report-queue.ts';
import { defaultScoreRules } from './score.ts';

export interface ContributionSimOptions {
  nodes: number;
  topology: Topology;
  seed: number;
  seconds: number;
  intervalS: number;
  cheaters: number;
  /** default: a quarter of the run, so each box beacons four times as in a day of 6 h periods */
  beaconPeriodS?: number;
  rangeM?: number;
  mesh?: MeshConfig;
}

export interface ContributionFigures {
  epoch_s: number;
  beacon_period_s: number;
  cheaters: number[];
  /**
   * the largest share of any box's airtime budget spent on beacons and witness reports (its
   * own and those it forwarded), at the 6 h beacon period boxes use: its airtime per beacon
   * period over the budget of 6 h (the run compresses periods to fit several in)
   */
  max_budget_share: number;
  /** the same over the run as simulated, periods compressed */
  max_budget_share_in_run: number;
  beacons: number;
  beacons_skipped: number;
  witnesses_valid: number;
  witnesses_refused: number;
  refused: Record<string, number>;
  relay_unmatched: number;
  outliers_flagged: number;
  honest_performance_mean: number;
  cheater_performance_mean: number | null;
}

/** Unix seconds at the simulation's start: where the simulated readings' clocks are (agent/mesh/sim-traffic.ts). */
const SIM_START_S = 1_795_000_000;
const BASE: Location = { lat: 52.37, lon: 4.89 };
const RADIO = { region: 'EU868', frequencyHz: 869_525_000, eirpDbm: 14 } as const;
const HOUR_MS = 3_600_000;

export function contributionSim(options: ContributionSimOptions): { boxes: SimBoxes; figures(): ContributionFigures } {
  const epochS = options.seconds;
  const periodS = options.beaconPeriodS ?? Math.max(60, Math.floor(epochS / 4));
  const epoch = Math.floor(SIM_START_S / epochS);
  const startS = epoch * epochS;
  const traffic = signedTraffic(options.seed, options.intervalS);
  // The simulator places its boxes with the first numbers of the seed's sequence (mesh/simulation.ts makeWorld): the same call gives the same places.
  const positions = placeNodes(options.topology, options.nodes, options.rangeM ?? 2000, new SeededRandom(options.seed));
  const ids = positions.map((_, i) => traffic.identity(i).id);
  const index = new Map(ids.map((id, i) => [id, i]));
  const owner = (i: number) => `0x${(i + 1).toString(16).padStart(40, '0')}`;
  const location = (i: number) => offsetLocation(BASE, positions[i]!.x, positions[i]!.y);
  const cheaters = pickCheaters(options.nodes, options.cheaters, options.seed);
  const signer = (i: number) => (message: ContributionMessage) => signContribution(traffic.identity(i), message, (tbs) => traffic.sign(i, tbs));

  let run: ReturnType<typeof newRun> | undefined;
  function newRun(key: Uint8Array) {
    const presence = new PresenceLedger({
      ...DEFAULT_PRESENCE_RULES, epoch, epochS, beaconPeriodS: periodS,
      ownerOf: (d) => (index.has(d) ? owner(index.get(d)!) : undefined),
      locationOf: (d) => (index.has(d) ? location(index.get(d)!) : undefined),
    });
    const delivered = positions.map(() => new Set<number>());
    const relays = new RelayLedger({ startS, endS: startS + epochS, readingHash: (origin, seq) => (index.has(origin) && delivered[index.get(origin)!]!.has(seq) ? traffic.hash(index.get(origin)!, seq) : undefined) });
    const job: Job = { id: 'sim-temperature', quantity: { name: 'temperature', unit: 'Cel' }, area: { box: { south: -90, west: -180, north: 90, east: 180 } }, intervalS: options.intervalS, from: startS, to: startS + epochS, rewardPerSlot: '1' };
    return {
      key, presence, relays, delivered, job,
      jobs: new JobLedger(job, ids, { startS, endS: startS + epochS }),
      expected: positions.map(() => 0),
      links: [] as BeaconLink[],
      beaconers: [] as Beaconer[],
      batchers: new Map<number, RelayBatcher>(),
      uplinks: new Set<number>(),
      nowS: () => startS,
    };
  }

  /** What the gateway does with a beacon, witness or relay attestation that reached it. */
  const gatewayTakes = (bytes: Uint8Array) => {
    let kind: string;
    try {
      kind = openContribution(bytes).message.kind;
    } catch {
      kind = 'malformed';
    }
    if (kind === 'relay') run!.relays.add(bytes);
    else run!.presence.add(bytes);
  };

  const inner = shippedBoxes({
    seed: options.seed, intervalS: options.intervalS, traffic, ...(options.mesh ? { mesh: options.mesh } : {}),
    hooks: {
      // The uplink box publishes what a box signed, on that box's topic: the gateway checks the signature.
      onReport: (_uplink, message) => gatewayTakes(message.payload),
      onRelayed: (uplink, device, seq, reading) => run!.batchers.get(uplink)?.add(traffic.identity(index.get(device)!).kid, seq, messageHash(reading)),
    },
  });

  const boxes: SimBoxes = {
    reading: inner.reading,
    run(world) {
      const r = run = newRun(world.key);
      const random = new SeededRandom(options.seed ^ 0xc0ffee);
      r.nowS = () => startS + world.clock.now() / 1000;
      const factory = inner.run({
        ...world,
        arrived(origin, n) {
          r.delivered[origin]!.add(n);
          r.jobs.add({ device: ids[origin]!, timeS: r.nowS(), name: 'temperature', unit: 'Cel', value: jobValue(origin, r.nowS(), cheaters.has(origin), random), location: location(origin) });
          world.arrived(origin, n);
        },
      });
      const hourly = () => {
        attestRelays(r, signer, false);
        for (const c of cheaters) claimFakeRelays(c, r, signer, traffic.identity((c + 1) % options.nodes).kid, random);
        world.clock.setTimeout(hourly, HOUR_MS);
      };
      world.clock.setTimeout(hourly, HOUR_MS);
      return (i, link, uplink) => {
        const beaconLink = new BeaconLink(link, { isReport: (frame) => isReportFrame(frame, world.key) });
        r.links[i] = beaconLink;
        if (uplink) {
          r.uplinks.add(i);
          r.batchers.set(i, new RelayBatcher());
        }
        const box = factory(i, beaconLink, uplink);
        const sign = signer(i);
        const queue = new ReportQueue(box.node, world.clock);
        const send = (bytes: Uint8Array) => {
          if (uplink) gatewayTakes(bytes);
          else queue.add(bytes);
        };
        const beaconer = new Beaconer({
          identity: traffic.identity(i), sign, radios: [{ link: beaconLink, ...RADIO }], clock: world.clock, random: world.random, nowS: r.nowS, periodS,
          report(kind, bytes) {
            send(bytes);
            if (kind === 'beacon' && cheaters.has(i)) send(selfWitness(bytes, sign, r.nowS()));
          },
        });
        r.beaconers[i] = beaconer;
        return {
          node: box.node,
          start() {
            box.start();
            beaconer.start();
          },
          read(n) {
            r.expected[i]!++;
            box.read(n);
          },
          ...(box.counters ? { counters: box.counters } : {}),
        };
      };
    },
  };

  return {
    boxes,
    figures(): ContributionFigures {
      const r = run;
      if (!r) throw new Error('the contribution simulation has not run');
      attestRelays(r, signer, true);
      const presence = r.presence.settle();
      const jobs = r.jobs.settle();
      const scored = scoreDevices({
        rules: defaultScoreRules(epochS, periodS),
        devices: ids.map((device, i) => ({ device, owner: owner(i), readingsExpected: r.expected[i]!, readingsDelivered: r.delivered[i]!.size, uptimeS: epochS, beacons: true })),
        presence, relays: r.relays.settle(), jobs: [jobs.credits],
      });
      const budgetShare = r.links[0]?.inner.budgetMs() === Infinity ? 1 : 0.1;
      const shares = r.links.map((l) => (l.beaconAirtimeMs + l.reportAirtimeMs) / (budgetShare * epochS * 1000));
      const atDefaultPeriod = Math.max(1, DEFAULT_PRESENCE_RULES.beaconPeriodS / periodS);
      const refused = Object.fromEntries(Object.entries(presence.refused).filter(([, n]) => n > 0));
      return {
        epoch_s: epochS, beacon_period_s: periodS, cheaters: [...cheaters].sort((a, b) => a - b),
        max_budget_share: round(Math.max(0, ...shares) / atDefaultPeriod, 5),
        max_budget_share_in_run: round(Math.max(0, ...shares), 5),
        beacons: presence.beacons,
        beacons_skipped: r.beaconers.reduce((s, b) => s + b.counters.skipped, 0),
        witnesses_valid: presence.witnessesValid,
        witnesses_refused: Object.values(presence.refused).reduce((s, n) => s + n, 0),
        refused,
        relay_unmatched: r.relays.unmatched,
        outliers_flagged: jobs.flagged.length,
        honest_performance_mean: mean(scored.filter((_, i) => !cheaters.has(i))),
        cheater_performance_mean: cheaters.size ? mean(scored.filter((_, i) => cheaters.has(i))) : null,
      };
    },
  };
}

type Run = { relays: RelayLedger; batchers: Map<number, RelayBatcher>; nowS: () => number };

/** Every uplink box's attestation of what it relayed since the last (hourly, and at the end). */
function attestRelays(r: Run, signer: (i: number) => (m: ContributionMessage) => Uint8Array, final: boolean): void {
  for (const [i, batcher] of r.batchers) {
    for (const body of batcher.flush(Math.floor(r.nowS()) - (final ? 1 : 0))) r.relays.add(signer(i)({ kind: 'relay', body }));
  }
}

/** A cheater claims it relayed ten readings of another box, with hashes it made up. */
function claimFakeRelays(cheater: number, r: Run, signer: (i: number) => (m: ContributionMessage) => Uint8Array, origin: Uint8Array, random: SeededRandom): void {
  const hashes = Array.from({ length: 10 }, () => random.bytes(8));
  r.relays.add(signer(cheater)({ kind: 'relay', body: { origin, firstSeq: random.int(50), hashes, time: Math.floor(r.nowS()) } }));
}

/** A cheater's witness of its own beacon, with a strong signal. */
function selfWitness(beacon: Uint8Array, sign: (m: ContributionMessage) => Uint8Array, nowS: number): Uint8Array {
  const opened = openContribution(beacon);
  if (opened.message.kind !== 'beacon') throw new Error('not a beacon');
  return sign({
    kind: 'witness',
    body: { beaconId: beaconId(beacon), beaconer: beaconerOf(opened.signer.kid), receivedAt: Math.floor(nowS), rssi: -60, snr: 9, frequencyHz: opened.message.body.frequencyHz, link: 'sim', region: opened.message.body.region },
  });
}

/** The modelled temperature a box reports for its job: the truth plus noise, or a cheater's invention. */
function jobValue(origin: number, timeS: number, cheater: boolean, random: SeededRandom): number {
  if (cheater) return origin % 2 ? -10 + random.next() * 50 : 25;
  const truth = 15 + 5 * Math.sin((2 * Math.PI * timeS) / 86_400);
  return truth + (random.next() + random.next() + random.next() - 1.5) * 0.35;
}

function isReportFrame(frame: Uint8Array, key: Uint8Array): boolean {
  try {
    const packet = decodePacket(frame, key);
    return packet.kind === 'data' && packet.type === 'report';
  } catch {
    return false;
  }
}

function pickCheaters(nodes: number, n: number, seed: number): Set<number> {
  const random = new SeededRandom(seed ^ 0xbad);
  const order = Array.from({ length: nodes }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return new Set(order.slice(0, Math.min(n, nodes)));
}

function mean(devices: readonly ScoredDevice[]): number {
  return devices.length ? round(devices.reduce((s, d) => s + d.performance, 0) / devices.length, 4) : 0;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
