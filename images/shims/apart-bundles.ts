// Stands in, inside the single executable, for modules a box does not load while it runs
// (images/build.ts, APART): the gateway, chain and tool commands, the data-job logic and
// the status page are bundled apart and carried as the executable's assets `<name>.cjs`,
// compiled only when first used. V8 parses all of a script it loads; with them in the one
// script, an idle box's resident size was measured 12 MB higher.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as sea from 'node:sea';

const loaded = new Map<string, Record<string, unknown>>();

/** A bundle's exports: one module namespace per module it carries, by its key. */
export function loadBundle(name: string): Record<string, unknown> {
  const cached = loaded.get(name);
  if (cached) return cached;
  // Outside an executable (the plain bundle run with node), the file beside the bundle.
  const source = sea.isSea() ? sea.getAsset(`${name}.cjs`, 'utf8') : readFileSync(join(__dirname, `iop-agent-${name}.cjs`), 'utf8');
  const module = { exports: {} as Record<string, unknown> };
  // require here is the executable's: built-in modules only, all these bundles need.
  new Function('module', 'exports', 'require', '__filename', '__dirname', source)(module, module.exports, require, __filename, __dirname);
  loaded.set(name, module.exports);
  return module.exports;
}
