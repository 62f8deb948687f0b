// Stands in, inside the single executable, for the commands a box never runs (gateway,
// chain, proof, rewards, job, sim, demo): they are bundled apart (images/build.ts) and
// carried as the executable's asset `tools.cjs`, compiled only when one of them runs.
// V8 parses all of a script it loads, and with their libraries (viem, the Merkle tree,
// h3-js) in the one script a box's resident size grew by about 12 MB.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as sea from 'node:sea';

let tools: Record<string, unknown> | undefined;

/** The tools bundle's exports: one module namespace per command file, by its name. */
export function loadTools(): Record<string, unknown> {
  if (tools) return tools;
  // Outside an executable (the plain bundle run with node), the file beside the bundle.
  const source = sea.isSea() ? sea.getAsset('tools.cjs', 'utf8') : readFileSync(join(__dirname, 'iop-agent-tools.cjs'), 'utf8');
  const module = { exports: {} as Record<string, unknown> };
  // require here is the executable's: built-in modules only, all the tools bundle needs.
  new Function('module', 'exports', 'require', '__filename', '__dirname', source)(module, module.exports, require, __filename, __dirname);
  tools = module.exports;
  return tools;
}
