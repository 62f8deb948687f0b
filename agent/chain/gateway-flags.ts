// The gateway's chain flags, turned into Anchorers (or none: without them the gateway
// does not anchor) and the chain's stake provider.
import type { CommandContext } from '../command.ts';
import { stringOption } from '../command.ts';
import { IopError } from '../errors.ts';
import { SqliteAnchorLedger } from '../gateway/anchor-ledger.ts';
import { integerOption } from '../commands/options.ts';
import { Anchorer } from './anchorer.ts';
import { loadChainKey } from './key.ts';
import type { Address } from './client.ts';
import { addressOption } from './cli.ts';
import { RewardRootLedger } from '../gateway/reward-root-ledger.ts';
import { ChainStakes } from './stakes.ts';

export type { Anchorer };

export async function anchorerFromFlags(context: CommandContext, stateDir: string): Promise<Anchorer | undefined> {
  const rpc = stringOption(context, 'chain-rpc');
  const contract = stringOption(context, 'chain-contract');
  const keyFile = stringOption(context, 'chain-key');
  const given = [rpc, contract, keyFile].filter((v) => v !== undefined).length;
  if (given === 0) return undefined;
  // --chain-rpc and --chain-key serve the rewards contracts too: only --chain-contract (or
  // the chain flags with nothing else to do) means anchoring readings.
  const otherUse = stringOption(context, 'rewards-contract') !== undefined || stringOption(context, 'stakes-contract') !== undefined;
  if (contract === undefined && otherUse) return undefined;
  if (given < 3) throw new IopError('USAGE', 'anchoring needs all of --chain-rpc, --chain-contract and --chain-key');
  addressOption(contract!, 'chain-contract');
  const account = loadChainKey(keyFile!);
  const epochS = integerOption(context, 'epoch-s', { min: 1, max: 31 * 86_400 }) ?? 3600;
  // The ledger sits beside the readings it takes its leaves from: in the store's database.
  const db = stringOption(context, 'db');
  const ledger = db !== undefined
    ? await (await import('../gateway/anchor-ledger-postgres.ts')).openPostgresAnchorLedger(db, { epochS })
    : new SqliteAnchorLedger(stateDir, { epochS });
  return new Anchorer({
    ledger, rpc: rpc!, account, contract: contract as Address,
    confirmations: integerOption(context, 'chain-confirmations', { min: 1, max: 10_000 }) ?? 12,
    log: context.log.child('chain'),
  });
}

/** `--rewards-contract`: each rewards epoch's root of cumulative amounts onto the claim contract. */
export function rewardAnchorerFromFlags(context: CommandContext, stateDir: string, epochS: number): Anchorer | undefined {
  const contract = stringOption(context, 'rewards-contract');
  if (contract === undefined) return undefined;
  const rpc = stringOption(context, 'chain-rpc');
  const keyFile = stringOption(context, 'chain-key');
  if (rpc === undefined || keyFile === undefined) throw new IopError('USAGE', '--rewards-contract needs --chain-rpc and --chain-key');
  return new Anchorer({
    ledger: new RewardRootLedger(stateDir, { epochS }), rpc, account: loadChainKey(keyFile), contract: addressOption(contract, 'rewards-contract'),
    confirmations: integerOption(context, 'chain-confirmations', { min: 1, max: 10_000 }) ?? 12,
    log: context.log.child('rewards-chain'), leaves: 'owners\' cumulative amounts',
  });
}

/** `--stakes-contract`: owners' stakes from the stake registry. */
export function stakesFromFlags(context: CommandContext): ChainStakes | undefined {
  const contract = stringOption(context, 'stakes-contract');
  if (contract === undefined) return undefined;
  const rpc = stringOption(context, 'chain-rpc');
  if (rpc === undefined) throw new IopError('USAGE', '--stakes-contract needs --chain-rpc');
  return new ChainStakes(rpc, addressOption(contract, 'stakes-contract'));
}
