// The compiled registry contract (contracts/IopRegistry.sol), committed as
// contracts/build/IopRegistry.json by `npm run contracts`.
import type { Abi, Hex } from 'viem';
import artifact from '../../contracts/build/IopRegistry.json' with { type: 'json' };

export const REGISTRY_ABI = artifact.abi as Abi;
export const REGISTRY_BYTECODE = artifact.bytecode as Hex;
