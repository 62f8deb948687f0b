// Compiles the contracts (IopRegistry.sol, IopStaking.sol, IopRewards.sol; the first and
// last import IopGatewayAnchors.sol) with solc-js
// (the npm `solc` package, wasm: no compiler download) and OpenZeppelin's sources from
// node_modules. `npm run contracts` writes each one's ABI and bytecode to
// contracts/build/<name>.json, which is committed: the agent deploys and calls the
// contracts without a compiler, and a test recompiles and compares byte for byte.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
export const CONTRACTS_DIR = import.meta.dirname;
export const CONTRACTS = ['IopRegistry', 'IopStaking', 'IopRewards'] as const;
export type ContractName = typeof CONTRACTS[number];
export const artifactFile = (name: ContractName) => join(CONTRACTS_DIR, 'build', `${name}.json`);
export const ARTIFACT_FILE = artifactFile('IopRegistry');

interface SolcOutput {
  errors?: { severity: string; formattedMessage: string }[];
  contracts: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string }; deployedBytecode: { object: string } } }>>;
}

/** The registry's artifact text exactly as committed. */
export function compileRegistry(): string {
  return compileContract('IopRegistry');
}

/** A contract's artifact text exactly as committed (each compiled alone, from <name>.sol). */
export function compileContract(name: ContractName): string {
  const SOURCE = `${name}.sol`;
  const solc = require('solc') as { version(): string; compile(input: string, callbacks: { import(path: string): { contents: string } | { error: string } }): string };
  const input = {
    language: 'Solidity',
    sources: { [SOURCE]: { content: readFileSync(join(CONTRACTS_DIR, SOURCE), 'utf8') } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'cancun',
      // No metadata hash: the bytecode depends on the sources only, not on file paths.
      metadata: { bytecodeHash: 'none', appendCBOR: false },
      outputSelection: { [SOURCE]: { [name]: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: resolveImport })) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length) throw new Error(`solc: ${errors.map((e) => e.formattedMessage).join('\n')}`);
  const contract = output.contracts[SOURCE]![name]!;
  const artifact = {
    contractName: name,
    compiler: `solc-js ${solc.version()}`,
    settings: { optimizer: input.settings.optimizer, evmVersion: input.settings.evmVersion },
    abi: contract.abi,
    bytecode: '0x' + contract.evm.bytecode.object,
    deployedBytecode: '0x' + contract.evm.deployedBytecode.object,
  };
  return JSON.stringify(artifact, null, 2) + '\n';
}

/** Only `@openzeppelin/...` imports, resolved in node_modules, and this folder's own sources. */
function resolveImport(path: string): { contents: string } | { error: string } {
  if (/^Iop\w+\.sol$/.test(path)) return { contents: readFileSync(join(CONTRACTS_DIR, path), 'utf8') };
  if (!path.startsWith('@openzeppelin/contracts/')) return { error: `import ${path} is outside @openzeppelin/contracts and contracts/` };
  try {
    const packageDir = dirname(require.resolve('@openzeppelin/contracts/package.json'));
    return { contents: readFileSync(join(packageDir, path.slice('@openzeppelin/contracts/'.length)), 'utf8') };
  } catch (err) {
    return { error: `cannot read ${path}: ${(err as Error).message}` };
  }
}

if (import.meta.main) {
  for (const name of CONTRACTS) {
    writeFileSync(artifactFile(name), compileContract(name));
    console.log(`wrote ${artifactFile(name)}`);
  }
}
