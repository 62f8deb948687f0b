// The gateway's contribution flags (--stakes or --stakes-contract, --pool, --locations, --job-issuer,
// --epoch-s, --grace-s, --beacon-period-s, --by-stake-only) into a ContributionLedger; none without a stake source.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { stringOption, type CommandContext } from '../command.ts';
import type { Location } from '../contribution/geo.ts';
import { JsonStakeFile, type StakeProvider } from '../contribution/rewards.ts';
import { IopError, errorMessage } from '../errors.ts';
import { ContributionLedger, type ContributionOptions } from '../gateway/contribution.ts';
import type { Pairings } from '../gateway/pairings.ts';
import type { Logger } from '../log.ts';
import { integerOption } from './options.ts';

/** Production epochs are a minute at least; shorter ones (tests, small deployments) need an explicit --grace-s. */
const MIN_EPOCH_S = 60;
const MIN_SHORT_EPOCH_S = 10;
const DEFAULT_GRACE_S = 600;

export interface ContributionTiming {
  epochS: number;
  /** late messages are taken this long after an epoch ends, then it is closed */
  graceS: number;
  /** how often the ledger looks for epochs to close (and allocates jobs) */
  tickS: number;
  /** the boxes' beacon period (their mesh.beaconPeriodS): one beacon credited per box and period */
  beaconPeriodS: number;
}

/**
 * The contribution epoch's timing: --epoch-s (default a day, at least 60 s) and --grace-s
 * (default 600 s). Giving --grace-s lets --epoch-s go down to 10 s: an epoch then closes
 * within a tenth of its length after its grace, so a test sees one close in seconds.
 */
export function contributionTiming(context: CommandContext): ContributionTiming {
  const graceS = integerOption(context, 'grace-s', { min: 0, max: 86_400 });
  const epochS = integerOption(context, 'epoch-s', { min: MIN_SHORT_EPOCH_S, max: 30 * 86_400 }) ?? 86_400;
  if (epochS < MIN_EPOCH_S && graceS === undefined) {
    throw new IopError('USAGE', `--epoch-s ${epochS}: contribution epochs shorter than ${MIN_EPOCH_S} s need --grace-s too (short epochs are for tests and small deployments, docs/rewards.md)`);
  }
  const beaconPeriodS = integerOption(context, 'beacon-period-s', { min: 1, max: 7 * 86_400 }) ?? 21_600;
  return { epochS, graceS: graceS ?? DEFAULT_GRACE_S, tickS: Math.max(1, Math.min(60, Math.floor(epochS / 10))), beaconPeriodS };
}

/** The contribution epoch's length (--epoch-s, default a day). */
export function contributionEpochS(context: CommandContext): number {
  return contributionTiming(context).epochS;
}

/** `chainStakes`: the stake registry's provider when --stakes-contract is given (loaded with viem by the caller). */
export function contributionFromFlags(context: CommandContext, from: { session: Omit<ContributionOptions['session'], 'clientId'>; stateDir: string; pairings: Pairings; log: Logger; chainStakes?: StakeProvider | undefined }): ContributionLedger | undefined {
  const stakes = stringOption(context, 'stakes');
  if (stakes !== undefined && from.chainStakes) throw new IopError('USAGE', 'give --stakes FILE or --stakes-contract ADDR, not both');
  if (stakes === undefined && !from.chainStakes) {
    if (context.values['grace-s'] !== undefined) throw new IopError('USAGE', '--grace-s needs contribution on (--stakes or --stakes-contract)');
    return undefined;
  }
  const timing = contributionTiming(context);
  const pool = stringOption(context, 'pool') ?? '0';
  if (!/^\d+$/.test(pool)) throw new IopError('USAGE', `--pool expects a whole number, got '${pool}'`);
  const locationsFile = stringOption(context, 'locations');
  return new ContributionLedger({
    session: { ...from.session, clientId: `iop-gwc-${randomBytes(4).toString('hex')}` },
    stateDir: from.stateDir,
    paired: () => from.pairings.list(),
    locations: locationsFile ? readLocations(locationsFile) : new Map(),
    stakes: from.chainStakes ?? new JsonStakeFile(stakes!),
    pool: BigInt(pool),
    byStakeOnly: context.values['by-stake-only'] === true,
    epochS: timing.epochS,
    graceS: timing.graceS,
    tickS: timing.tickS,
    beaconPeriodS: timing.beaconPeriodS,
    jobIssuers: (context.values['job-issuer'] as string[] | undefined) ?? [],
    log: from.log,
  });
}

function readLocations(path: string): Map<string, Location> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new IopError('USAGE', `--locations ${path}: ${errorMessage(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw new IopError('USAGE', `--locations ${path}: expected an object of device id to {lat, lon}`);
  const out = new Map<string, Location>();
  for (const [device, at] of Object.entries(parsed)) {
    const { lat, lon } = (at ?? {}) as { lat?: unknown; lon?: unknown };
    if (typeof lat !== 'number' || typeof lon !== 'number' || Math.abs(lat) > 90 || Math.abs(lon) > 180) throw new IopError('USAGE', `--locations ${path}: ${device} needs numeric lat (±90) and lon (±180)`);
    out.set(device, { lat, lon });
  }
  return out;
}
