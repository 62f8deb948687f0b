// Where native addons (the serial bindings, onoff's epoll) come from. In a checkout
// they load from node_modules as their packages arrange; a single executable cannot
// carry them, so they ship beside it in one layout for every addon:
//
//   iop-agent-linux-<arch>            the executable
//   iop-agent-linux-<arch>.d/addons/  <name>.node, one per addon (serialport.node, epoll.node)
//
// Installed on a box the executable may be renamed (/usr/bin/iop-agent); the directory
// follows it (/usr/bin/iop-agent.d/addons), or /usr/lib/iop-agent/addons, or
// $IOP_AGENT_ADDONS for tests.
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** The directories searched for `<name>.node`, in order. */
export function addonDirectories(env: NodeJS.ProcessEnv = process.env, execPath = process.execPath): string[] {
  const dirs: string[] = [];
  if (env.IOP_AGENT_ADDONS) dirs.push(env.IOP_AGENT_ADDONS);
  let real = execPath;
  try {
    real = realpathSync(execPath);
  } catch {
    // a vanished executable still names its directory
  }
  dirs.push(`${real}.d/addons`);
  if (real !== execPath) dirs.push(`${execPath}.d/addons`);
  dirs.push('/usr/lib/iop-agent/addons');
  return dirs;
}

/** The path of addon `<name>.node` in the shipped layout, or undefined. */
export function findShippedAddon(name: string, dirs = addonDirectories()): string | undefined {
  return dirs.map((dir) => join(dir, `${name}.node`)).find((path) => existsSync(path));
}

/**
 * Loads a shipped addon by name. Throws an Error naming the addon and every directory
 * searched when it is missing, so a box with an incomplete install says what to copy where.
 */
export function loadShippedAddon(name: string, dirs = addonDirectories()): unknown {
  const path = findShippedAddon(name, dirs);
  if (!path) throw new Error(`native addon ${name}.node not found (looked in ${dirs.join(', ')})`);
  // createRequire works in a single executable too, where the global require is limited.
  return createRequire(import.meta.url)(path);
}
