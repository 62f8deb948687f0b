// The gateway's chain flags, turned into an Anchorer (or none: without them the gateway
// does not anchor).
import type { CommandContext } from '../command.ts';
import { stringOption } from '../command.ts';
import { IopError } from '../errors.ts';
import { SqliteAnchorLedger } from '../gateway/anchor-ledger.ts';
import { integerOption } from '../commands/options.ts';
import { Anchorer } from './anchorer.ts';
import { loadChainKey } from './key.ts';
import type { Address } from './client.ts';

export type { Anchorer };

export function anchorerFromFlags(context: CommandContext, stateDir: string): Anchorer | undefined {
  const rpc = stringOption(context, 'chain-rpc');
  const contract = stringOption(context, 'chain-contract');
  const keyFile = stringOption(context, 'chain-key');
  const given = [rpc, contract, keyFile].filter((v) => v !== undefined).length;
  if (given === 0) return undefined;
  if (given < 3) throw new IopError('USAGE', 'anchoring needs all of --chain-rpc, --chain-contract and --chain-key');
  // The ledger reads the readings from the SQLite store; a PostgreSQL store needs a
  // PostgreSQL ledger (AnchorLedger), not written yet: refuse rather than anchor nothing.
  const db = stringOption(context, 'db');
  if (db !== undefined && /^postgres(ql)?:/.test(db)) throw new IopError('USAGE', 'anchoring (--chain-rpc) works with the SQLite store only for now, not with --db postgres://');
  if (!/^0x[0-9a-fA-F]{40}$/.test(contract!)) throw new IopError('USAGE', `--chain-contract expects an address (0x and 40 hex digits), got '${contract!.slice(0, 60)}'`);
  const account = loadChainKey(keyFile!);
  const ledger = new SqliteAnchorLedger(stateDir, { epochS: integerOption(context, 'epoch-s', { min: 1, max: 31 * 86_400 }) ?? 3600 });
  return new Anchorer({
    ledger, rpc: rpc!, account, contract: contract as Address,
    confirmations: integerOption(context, 'chain-confirmations', { min: 1, max: 10_000 }) ?? 12,
    log: context.log.child('chain'),
  });
}
