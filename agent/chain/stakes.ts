// Owners' stakes read from the stake registry (contracts/IopStaking.sol) when an epoch
// closes: every address that ever staked, paged, with its current stake; withdrawn stakes
// (zero) are left out. A chain that does not answer throws: the contribution ledger then
// keeps the epoch open and tries again on its next tick.
import type { StakeProvider } from '../contribution/rewards.ts';
import { STAKING_ABI } from './artifact.ts';
import { ChainClient, type Address } from './client.ts';

/** stakers read per call: bounded return data, well under any node's limits */
const PAGE = 200;

export class ChainStakes implements StakeProvider {
  private readonly rpc: string;
  private readonly contract: Address;
  private client: ChainClient | undefined;

  constructor(rpc: string, contract: Address) {
    this.rpc = rpc;
    this.contract = contract;
  }

  async stakes(): Promise<Map<string, bigint>> {
    try {
      const client = this.client ??= await ChainClient.connect(this.rpc);
      // One block for every page: a stake moving between two pages cannot be counted twice.
      const blockNumber = await client.blockNumber();
      const read = <T>(functionName: string, args: readonly unknown[]) =>
        client.public.readContract({ address: this.contract, abi: STAKING_ABI, functionName, args, blockNumber }) as Promise<T>;
      const count = await read<bigint>('stakerCount', []);
      const out = new Map<string, bigint>();
      for (let from = 0n; from < count; from += BigInt(PAGE)) {
        const [owners, amounts] = await read<readonly [readonly string[], readonly bigint[]]>('stakesPage', [from, BigInt(PAGE)]);
        owners.forEach((owner, i) => {
          if (amounts[i]! > 0n) out.set(owner.toLowerCase(), amounts[i]!);
        });
      }
      return out;
    } catch (err) {
      this.client = undefined;
      throw new Error(`stakes from contract ${this.contract} via ${this.rpc}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
}
