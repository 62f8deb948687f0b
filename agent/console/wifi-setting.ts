// The console's `set wifi`: WiFi mesh setup per interface, checked by the configuration
// schema's own rules, stored with the console settings and laid over mesh.links at the
// next start. A null entry (`set wifi IF off`) leaves the interface alone again, even where
// the configuration file set it up.
import { describeIssue } from '../config/load.ts';
import { interfaceName, udpLinkSchema, wifiSchema, type MeshConfig, type WifiConfig } from '../config/schema.ts';

/** Interface name to its WiFi setup, or null for none. */
export type WifiSettings = Record<string, WifiConfig | null>;

/** Checks an interface and its setup (null: none); throws an Error naming what is wrong. */
export function checkWifiSetting(iface: string, wifi: unknown): { iface: string; wifi: WifiConfig | null } {
  const name = interfaceName.safeParse(iface);
  if (!name.success) throw new Error(`interface '${iface.slice(0, 40)}': ${describeIssue(name.error.issues[0]!)}`);
  if (wifi === null) return { iface, wifi: null };
  const parsed = wifiSchema.safeParse(wifi);
  if (!parsed.success) throw new Error(parsed.error.issues.map((issue) => describeIssue(issue)).join('; '));
  return { iface, wifi: parsed.data };
}

/** The entries of a stored map that still pass the checks (a hand-edited file may hold others). */
export function validWifiSettings(raw: unknown): WifiSettings {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return {};
  const out: WifiSettings = {};
  for (const [iface, wifi] of Object.entries(raw)) {
    try {
      out[iface] = checkWifiSetting(iface, wifi).wifi;
    } catch {
      // dropped: the configuration file's setting applies to that interface
    }
  }
  return out;
}

/**
 * The mesh configuration with the stored settings laid over it: the UDP link on each
 * interface gets (or loses) its `wifi`; an interface without a UDP link gets one, on the
 * port and group of the box's other UDP links (or the defaults). A box without the mesh
 * enabled is left as it is: it opens no links.
 */
export function applyWifiSettings(mesh: MeshConfig, settings: WifiSettings): MeshConfig {
  if (!mesh.enabled) return mesh;
  const links = mesh.links.map((link) => {
    if (link.type !== 'udp' || !(link.interface in settings)) return link;
    const { wifi: _old, ...rest } = link;
    const wifi = settings[link.interface];
    return wifi ? { ...rest, wifi } : rest;
  });
  const udp = mesh.links.find((link) => link.type === 'udp');
  for (const [iface, wifi] of Object.entries(settings)) {
    if (!wifi || links.some((link) => link.type === 'udp' && link.interface === iface)) continue;
    links.push(udpLinkSchema.parse({ type: 'udp', interface: iface, ...(udp ? { port: udp.port, group: udp.group } : {}), wifi }));
  }
  return { ...mesh, links };
}

/** How a setting reads for a person. */
export function describeWifi(iface: string, wifi: WifiConfig | null): string {
  if (!wifi) return `${iface} left alone (no WiFi setup)`;
  return `${iface} joins ${wifi.mode === '80211s' ? '802.11s mesh' : 'IBSS'} '${wifi.meshId}' on channel ${wifi.channel}`;
}
