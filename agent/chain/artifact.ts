// The compiled contracts (contracts/*.sol), committed as contracts/build/<name>.json by
// `npm run contracts`.
import type { Abi, Hex } from 'viem';
import registry from '../../contracts/build/IopRegistry.json' with { type: 'json' };
import staking from '../../contracts/build/IopStaking.json' with { type: 'json' };
import rewards from '../../contracts/build/IopRewards.json' with { type: 'json' };

export const REGISTRY_ABI = registry.abi as Abi;
export const REGISTRY_BYTECODE = registry.bytecode as Hex;
export const STAKING_ABI = staking.abi as Abi;
export const REWARDS_ABI = rewards.abi as Abi;

export type ContractKind = 'registry' | 'staking' | 'rewards';
export const ARTIFACTS: Record<ContractKind, { abi: Abi; bytecode: Hex }> = {
  registry: { abi: REGISTRY_ABI, bytecode: REGISTRY_BYTECODE },
  staking: { abi: STAKING_ABI, bytecode: staking.bytecode as Hex },
  rewards: { abi: REWARDS_ABI, bytecode: rewards.bytecode as Hex },
};

/**
 * Every function, event and error of the three contracts, once each: the chain client
 * encodes calls and decodes custom errors of any of them. Entries the rewards contract
 * shares with the registry (anchor, rootOf, Anchored, AlreadyAnchored, ...) have the same
 * signature in both, which is what lets the anchorer drive either.
 */
export const CHAIN_ABI: Abi = (() => {
  const seen = new Set<string>();
  return [...REGISTRY_ABI, ...STAKING_ABI, ...REWARDS_ABI].filter((item) => {
    if (item.type === 'constructor' || item.type === 'receive' || item.type === 'fallback') return false;
    const key = `${item.type}:${item.name}(${item.inputs.map((i) => i.type).join(',')})`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
})();
