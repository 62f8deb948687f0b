// What `iop-agent chain` and `verify --anchored` do with the chain, loaded only when asked
// (viem stays out of a box's memory).
import type { CommandContext } from '../command.ts';
import { stringOption } from '../command.ts';
import { IopError } from '../errors.ts';
import { requireOption } from '../commands/options.ts';
import { ChainClient, classifyChainError, type Address } from './client.ts';
import { createChainKey, loadChainKey } from './key.ts';
import { AnchoredCheck } from './anchored-check.ts';
import { dbOption } from '../gateway/ledger-reader.ts';

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

export function addressOption(value: string, name: string): Address {
  if (!ADDRESS.test(value)) throw new IopError('USAGE', `--${name} expects an address (0x and 40 hex digits), got '${value.slice(0, 60)}'`);
  return value as Address;
}

export async function runChain(context: CommandContext): Promise<number> {
  const action = context.positionals[0];
  const json = context.values.json === true;
  const print = (value: Record<string, unknown>, text: string) => context.stdout.write(json ? JSON.stringify(value) + '\n' : text + '\n');
  if (action === 'key') {
    const account = createChainKey(requireOption(context, 'key'));
    print({ address: account.address }, `chain key made; address ${account.address} (fund it before anchoring)`);
    return 0;
  }
  if (context.positionals.length > 1 && action !== 'deploy') throw new IopError('USAGE', `chain ${action} takes no second argument`);
  if (action !== 'deploy' && action !== 'authorize') throw new IopError('USAGE', `unknown chain action '${action}': deploy, authorize or key`);
  const account = loadChainKey(requireOption(context, 'key'));
  const client = await connect(requireOption(context, 'rpc'), account);
  if (action === 'deploy') {
    const kind = context.positionals[1] ?? 'registry';
    if (kind !== 'registry' && kind !== 'staking' && kind !== 'rewards') throw new IopError('USAGE', `unknown contract '${kind}': registry, staking or rewards`);
    const { contract, transaction } = await client.deploy(kind).catch((err: unknown) => { throw chainFailure(err); });
    const role = kind === 'staking' ? 'owners stake with stake()' : `${client.address} is its first gateway${kind === 'rewards' ? '; send it the value to pay out' : ''}`;
    print({ contract, chainId: client.chainId, transaction }, `${kind} contract deployed at ${contract} on chain ${client.chainId} (transaction ${transaction}); ${role}`);
    return 0;
  }
  const contract = addressOption(requireOption(context, 'contract'), 'contract');
  const gateway = addressOption(stringOption(context, 'gateway') ?? '', 'gateway');
  const transaction = await client.send(contract, 'authorize', [gateway], { nonce: await client.nonce('pending'), gasFactor: 1.25, feeFactor: 1 })
    .catch((err: unknown) => { throw chainFailure(err); });
  const receipt = await client.waitForReceipt(transaction);
  if (receipt.status !== 'success') throw new IopError('CHAIN', `authorisation ${transaction} reverted`);
  print({ contract, gateway, chainId: client.chainId, transaction }, `${gateway} may now anchor on ${contract} (transaction ${transaction})`);
  return 0;
}

/** The inclusion check of `verify --anchored`, from its flags. */
export async function anchoredCheck(context: CommandContext): Promise<AnchoredCheck> {
  const gatewayDb = dbOption(stringOption(context, 'gateway-db'), 'gateway-db');
  return AnchoredCheck.open({
    client: await connect(requireOption(context, 'rpc')),
    contract: addressOption(requireOption(context, 'contract'), 'contract'),
    proofFile: stringOption(context, 'proof'),
    gatewayState: stringOption(context, 'gateway-state'),
    gatewayDb,
  });
}

export async function connect(rpc: string, account?: Parameters<typeof ChainClient.connect>[1]): Promise<ChainClient> {
  try {
    return await ChainClient.connect(rpc, account);
  } catch (err) {
    throw chainFailure(err);
  }
}

export function chainFailure(err: unknown): unknown {
  if (err instanceof IopError) return err;
  const failure = classifyChainError(err);
  if (failure.kind === 'down') return new IopError('CHAIN', `chain RPC does not answer: ${failure.message}`);
  if (failure.kind === 'revert') return new IopError('CHAIN', `the contract refused: ${failure.error}(${failure.args.map(String).join(', ')})`);
  return new IopError('CHAIN', `chain call failed: ${failure.message.split('\n')[0]}`);
}
