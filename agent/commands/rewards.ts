import { readFileSync } from 'node:fs';
import { CONFIG_HELP, CONFIG_OPTIONS, stringOption, type Command } from '../command.ts';
import type { EpochTable } from '../contribution/epoch.ts';
import { ownerRewards } from '../contribution/rewards.ts';
import { IopError } from '../errors.ts';
import { readTable } from '../gateway/contribution.ts';
import { configFromFlags, integerOption } from './options.ts';

type OwnerRow = EpochTable['owners'][number] & { stakeOnlyReward?: string };

export const rewardsCommand: Command = {
  name: 'rewards',
  summary: 'print an epoch\'s rewards table: owners, their devices\' parts, Merkle proofs',
  usage: 'iop-agent rewards --epoch N [--owner 0x...] [--by-stake-only] [--json] [--state-dir DIR | --table FILE]\n' +
    '       iop-agent rewards claim --epoch N --rpc URL --key FILE --contract ADDR [--owner 0x...] [--json] [--state-dir DIR | --table FILE]',
  help: `      --epoch N         the epoch (Unix seconds / epoch length); the gateway's table in <state dir>/rewards/N.json
      --owner 0x...     one owner: their devices with each part of the score, and the proof of their cumulative amount
      --by-stake-only   also what each owner would get by stake alone (today's rule), for comparison
      --json            the table (or the owner's part of it) as one JSON object
      --table FILE      the epoch's table from this file (as published on iop/v1/rewards/<epoch>)
                        instead of the gateway's state dir
  claim                 claim on the claim contract (docs/rewards.md, section 9) what it owes the
                        owner (default: the key's address), with the proof from epoch N's table;
                        N must be the latest anchored epoch. One transaction pays every epoch
                        not claimed yet. Prints {"owner","epoch","cumulative","paid","transaction"}
      --rpc URL         the chain's JSON-RPC endpoint
      --key FILE        the claiming account's key (0x and 64 hex digits, mode 0600); it pays the gas
      --contract ADDR   the claim contract
${CONFIG_HELP}
The state dir is the gateway's (docs/rewards.md, section 8).`,
  options: {
    ...CONFIG_OPTIONS, epoch: { type: 'string' }, owner: { type: 'string' }, 'by-stake-only': { type: 'boolean' }, json: { type: 'boolean' },
    table: { type: 'string' }, rpc: { type: 'string' }, key: { type: 'string' }, contract: { type: 'string' },
  },
  positionals: { min: 0, max: 1 },
  async run(context) {
    const epoch = integerOption(context, 'epoch', { min: 0, max: 2 ** 40 });
    if (epoch === undefined) throw new IopError('USAGE', 'rewards needs --epoch N');
    const action = context.positionals[0];
    if (action !== undefined && action !== 'claim') throw new IopError('USAGE', `unknown rewards action '${action}': claim`);
    const tableFile = stringOption(context, 'table');
    let table: EpochTable;
    try {
      table = tableFile !== undefined ? tableFromFile(tableFile, epoch) : readTable(configFromFlags(context).config.stateDir, epoch);
    } catch (err) {
      throw new IopError('USAGE', (err as Error).message);
    }
    // Loaded only to claim: printing a table never loads viem.
    if (action === 'claim') return (await import('../chain/claim.ts')).runClaim(context, epoch, table);
    let owners: OwnerRow[] = table.owners;
    if (context.values['by-stake-only']) {
      const stakeOnly = new Map(ownerRewards(BigInt(table.pool), new Map(owners.map((o) => [o.owner, BigInt(o.stake)])), [], true).map((r) => [r.owner, r.reward.toString()]));
      owners = owners.map((o) => ({ ...o, stakeOnlyReward: stakeOnly.get(o.owner) ?? '0' }));
    }
    const wanted = stringOption(context, 'owner')?.toLowerCase();
    if (wanted !== undefined) {
      const owner = owners.find((o) => o.owner === wanted);
      if (!owner) throw new IopError('USAGE', `owner ${wanted} has no row in epoch ${epoch} (owners: ${owners.map((o) => o.owner).join(', ') || 'none'})`);
      const devices = table.devices.filter((d) => d.owner?.toLowerCase() === wanted);
      if (context.values.json) {
        context.stdout.write(JSON.stringify({ epoch, rule: table.rule, root: table.root, owner, devices }) + '\n');
        return 0;
      }
      context.stdout.write([
        `epoch ${epoch}, owner ${owner.owner}: stake ${owner.stake}, ${owner.devices} devices, performance ${owner.performance.toFixed(6)}, reward ${owner.reward}` +
          `${owner.stakeOnlyReward !== undefined ? ` (by stake only ${owner.stakeOnlyReward})` : ''}, cumulative ${owner.cumulative}`,
        ...devices.map((d) => `  ${d.device}  performance ${d.performance.toFixed(6)}  ${Object.entries(d.parts).map(([k, v]) => `${k} ${v!.toFixed(3)}`).join('  ')}${d.outlierFactor < 1 ? `  outliers ×${d.outlierFactor.toFixed(3)}` : ''}`),
        `root ${table.root ?? 'none'}`,
        `proof [${owner.proof.join(', ')}]`,
      ].join('\n') + '\n');
      return 0;
    }
    if (context.values.json) {
      context.stdout.write(JSON.stringify({ ...table, owners }) + '\n');
      return 0;
    }
    context.stdout.write([
      `epoch ${epoch}: pool ${table.pool}, rule ${table.rule}, ${table.devices.length} devices, ${owners.length} owners, root ${table.root ?? 'none'}`,
      `${'owner'.padEnd(42)} ${'stake'.padStart(14)} ${'devices'.padStart(7)} ${'perf'.padStart(8)} ${'reward'.padStart(20)}${owners[0]?.stakeOnlyReward !== undefined ? ` ${'by stake only'.padStart(20)}` : ''} ${'cumulative'.padStart(20)}`,
      ...owners.map((o) => `${o.owner.padEnd(42)} ${o.stake.padStart(14)} ${String(o.devices).padStart(7)} ${o.performance.toFixed(4).padStart(8)} ${o.reward.padStart(20)}${o.stakeOnlyReward !== undefined ? ` ${o.stakeOnlyReward.padStart(20)}` : ''} ${o.cumulative.padStart(20)}`),
    ].join('\n') + '\n');
    return 0;
  },
};

function tableFromFile(path: string, epoch: number): EpochTable {
  let table: EpochTable;
  try {
    table = JSON.parse(readFileSync(path, 'utf8')) as EpochTable;
  } catch (err) {
    throw new Error(`--table ${path}: ${(err as Error).message}`);
  }
  if (table.epoch !== epoch || !Array.isArray(table.owners)) throw new Error(`${path} is not epoch ${epoch}'s rewards table`);
  return table;
}
