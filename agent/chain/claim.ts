// `iop-agent rewards claim`: an owner claims what the claim contract (contracts/IopRewards.sol)
// owes them, with the proof from an epoch's table. The contract checks claims against its
// latest root only, so the table must be the latest anchored epoch's; its cumulative amount
// pays every epoch not claimed yet in this one transaction.
import type { Hex } from 'viem';
import type { CommandContext } from '../command.ts';
import { stringOption } from '../command.ts';
import type { EpochTable } from '../contribution/epoch.ts';
import { IopError } from '../errors.ts';
import { requireOption } from '../commands/options.ts';
import { addressOption, chainFailure, connect } from './cli.ts';
import { loadChainKey } from './key.ts';

export interface ClaimResult {
  owner: string;
  epoch: number;
  cumulative: string;
  /** what this claim paid: the cumulative amount less what was claimed before */
  paid: string;
  transaction: Hex | null;
}

export async function runClaim(context: CommandContext, epoch: number, table: EpochTable): Promise<number> {
  const account = loadChainKey(requireOption(context, 'key'));
  const contract = addressOption(requireOption(context, 'contract'), 'contract');
  const owner = (stringOption(context, 'owner') ?? account.address).toLowerCase();
  const row = table.owners.find((o) => o.owner === owner);
  if (!row || BigInt(row.cumulative) === 0n) throw new IopError('USAGE', `owner ${owner} has nothing in epoch ${epoch}'s table`);
  const client = await connect(requireOption(context, 'rpc'), account);
  const [latestRoot, latestEpoch, claimed] = await Promise.all([
    client.read<Hex>(contract, 'latestRoot', []), client.read<bigint>(contract, 'latestEpoch', []), client.read<bigint>(contract, 'claimed', [owner]),
  ]).catch((err: unknown) => { throw chainFailure(err); });
  if (latestRoot !== table.root) {
    throw new IopError('USAGE', latestRoot === '0x' + '0'.repeat(64)
      ? `contract ${contract} has no rewards root yet: the gateway has not anchored one`
      : `epoch ${epoch}'s root ${table.root ?? 'none'} is not the contract's latest (${latestRoot}, epoch ${latestEpoch}): claim with the latest anchored epoch's table`);
  }
  const print = (result: ClaimResult, text: string) => context.stdout.write(context.values.json ? JSON.stringify(result) + '\n' : text + '\n');
  const cumulative = BigInt(row.cumulative);
  if (cumulative <= claimed) {
    print({ owner, epoch, cumulative: row.cumulative, paid: '0', transaction: null }, `${owner} has claimed ${claimed} already: nothing more to claim until a newer epoch`);
    return 0;
  }
  const transaction = await client.send(contract, 'claim', [owner, cumulative, row.proof], { nonce: await client.nonce('pending'), gasFactor: 1.25, feeFactor: 1 })
    .catch((err: unknown) => { throw chainFailure(err); });
  const receipt = await client.waitForReceipt(transaction);
  if (receipt.status !== 'success') throw new IopError('CHAIN', `claim ${transaction} reverted`);
  const paid = (cumulative - claimed).toString();
  print({ owner, epoch, cumulative: row.cumulative, paid, transaction }, `${owner} paid ${paid} (cumulative ${row.cumulative} after epoch ${epoch}; transaction ${transaction})`);
  return 0;
}
