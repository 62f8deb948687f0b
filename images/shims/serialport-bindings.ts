// Stands in for node-gyp-build inside the single executable: @serialport/bindings-cpp
// asks it for its native addon, and in the executable that addon ships beside it as
// <executable>.d/addons/serialport.node (drivers/native/addons.ts). Nothing is compiled
// or looked up in node_modules on the box.
import { addonDirectories, findShippedAddon } from '../../drivers/native/addons.ts';

export default function loadSerialportAddon(): unknown {
  const dirs = addonDirectories();
  const path = findShippedAddon('serialport', dirs);
  if (!path) throw new Error(`native addon serialport.node not found (looked in ${dirs.join(', ')}); serial radio links need it`);
  // process.dlopen works in a single executable, where require() loads built-in modules only.
  const module = { exports: {} as unknown };
  process.dlopen(module, path);
  return module.exports;
}
