// Brings a WiFi interface up as an 802.11s mesh point or an IBSS (ad hoc) member with
// iw and ip, so UDP mesh links have a medium. Every command goes through one runner
// that tests replace; an interface without `wifi:` in the config is never touched.
import { execFile } from 'node:child_process';

export interface WifiSettings {
  mode: '80211s' | 'ibss';
  meshId: string;
  channel: number;
}

export type CommandRunner = (command: string, args: string[]) => Promise<void>;

export const execRunner: CommandRunner = (command, args) => new Promise((resolve, reject) => {
  execFile(command, args, { timeout: 10_000 }, (err, _stdout, stderr) => {
    if (err) reject(new Error(`${command} ${args.join(' ')}: ${stderr.toString().trim() || err.message}`));
    else resolve();
  });
});

/** Centre frequency of a 2.4 or 5 GHz WiFi channel, or undefined. */
export function channelFrequencyMHz(channel: number): number | undefined {
  if (channel >= 1 && channel <= 13) return 2407 + 5 * channel;
  if (channel === 14) return 2484;
  if (channel >= 32 && channel <= 177) return 5000 + 5 * channel;
  return undefined;
}

/** The commands that put `iface` in the mode, in order. */
export function wifiCommands(iface: string, wifi: WifiSettings): [string, string[]][] {
  const freq = String(channelFrequencyMHz(wifi.channel));
  const type = wifi.mode === '80211s' ? 'mp' : 'ibss';
  const join: string[] = wifi.mode === '80211s' ? ['dev', iface, 'mesh', 'join', wifi.meshId, 'freq', freq] : ['dev', iface, 'ibss', 'join', wifi.meshId, freq];
  return [
    ['ip', ['link', 'set', iface, 'down']],
    ['iw', ['dev', iface, 'set', 'type', type]],
    ['ip', ['link', 'set', iface, 'up']],
    ['iw', join],
  ];
}

export async function setUpWifi(iface: string, wifi: WifiSettings, run: CommandRunner = execRunner): Promise<void> {
  for (const [command, args] of wifiCommands(iface, wifi)) await run(command, args);
}
