// Where onoff's epoll addon comes from: the shipped layout beside a single executable
// (<exe>.d/addons/epoll.node, found by drivers/native/addons.ts), else, in a checkout,
// what `node images/addons.ts` built for this machine (build/addons/linux-<arch>/).
// It is compiled per target and per Node ABI (nan), so it is never taken from elsewhere.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { addonDirectories, findShippedAddon } from '../native/addons.ts';

/** build/addons/linux-<arch> of the checkout; undefined inside a bundle, which has no checkout. */
export function checkoutAddonDirectory(arch: string = process.arch): string | undefined {
  const here = import.meta.dirname as string | undefined;
  return here ? join(here, '..', '..', 'build', 'addons', `linux-${arch}`) : undefined;
}

export function findEpollAddon(): { path: string | undefined; searched: string[] } {
  const dirs = addonDirectories();
  const checkout = checkoutAddonDirectory();
  const searched = checkout ? [...dirs, checkout] : dirs;
  const shipped = findShippedAddon('epoll', dirs);
  if (shipped) return { path: shipped, searched };
  const local = checkout ? join(checkout, 'epoll.node') : undefined;
  return { path: local && existsSync(local) ? local : undefined, searched };
}

export function loadEpollAddon(): unknown {
  const { path, searched } = findEpollAddon();
  if (!path) throw new Error(`native addon epoll.node not found (looked in ${searched.join(', ')}; in a checkout run: node images/addons.ts)`);
  // process.dlopen rather than require: it works the same in a bundle, where require is limited.
  const module = { exports: {} as unknown };
  process.dlopen(module, path);
  return module.exports;
}
