// Settings a tech changes on the console (`set broker`, `set wifi`) or the owner remotely (sampling
// interval, disabled sensors), kept in the state dir so the
// configuration file (often read-only, under /etc) need not be edited. They apply at the
// next start, over the configuration file; a --broker flag still wins over them.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../state-dir.ts';
import { checkWifiSetting, validWifiSettings, type WifiSettings } from './wifi-setting.ts';

export const SETTINGS_FILE = 'console-settings.json';
const BROKER_URL = /^(mqtts?|wss?):\/\/[^\s/]+/;

export interface ConsoleSettings { broker?: string; intervalMs?: number; disabledSensors?: string[]; wifi?: WifiSettings }

export function readConsoleSettings(stateDir: string): ConsoleSettings {
  const path = join(stateDir, SETTINGS_FILE);
  if (!existsSync(path)) return {};
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as ConsoleSettings;
    return {
      ...(typeof parsed.broker === 'string' && BROKER_URL.test(parsed.broker) ? { broker: parsed.broker } : {}),
      ...(Number.isInteger(parsed.intervalMs) && parsed.intervalMs! >= 10 && parsed.intervalMs! <= 86_400_000 ? { intervalMs: parsed.intervalMs } : {}),
      ...(Array.isArray(parsed.disabledSensors) ? { disabledSensors: parsed.disabledSensors.filter((n) => typeof n === 'string') } : {}),
      ...(parsed.wifi !== undefined ? { wifi: validWifiSettings(parsed.wifi) } : {}),
    };
  } catch {
    return {}; // a torn or edited file is ignored: the configuration file still applies
  }
}

export function storeBroker(stateDir: string, url: string): string {
  if (!BROKER_URL.test(url) || url.length > 512) throw new Error(`'${url.slice(0, 60)}' is not a broker URL: expected mqtt://, mqtts://, ws:// or wss:// and a host`);
  return storeSettings(stateDir, { broker: url });
}

/** Validates and stores one interface's WiFi setup (null: leave it alone); returns the file's path. */
export function storeWifi(stateDir: string, iface: string, wifi: unknown): string {
  const checked = checkWifiSetting(iface, wifi);
  return storeSettings(stateDir, { wifi: { ...readConsoleSettings(stateDir).wifi, [checked.iface]: checked.wifi } });
}

/** Merges `change` into the stored settings; returns the file's path. */
export function storeSettings(stateDir: string, change: ConsoleSettings): string {
  const path = join(stateDir, SETTINGS_FILE);
  writeFileAtomic(path, JSON.stringify({ ...readConsoleSettings(stateDir), ...change }) + '\n', 0o600);
  return path;
}
