// The console's `set wifi`: answers in both forms, the schema's rules, the refusal on a box
// without the mesh, and the stored setting laid over mesh.links at the next start.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execute, render, type ConsoleAgent } from '../agent/console/commands.ts';
import { readConsoleSettings, SETTINGS_FILE, storeBroker, storeWifi } from '../agent/console/settings.ts';
import { applyWifiSettings } from '../agent/console/wifi-setting.ts';
import { validateConfig } from '../agent/config/load.ts';
import type { MeshConfig } from '../agent/config/schema.ts';

const dirs: string[] = [];
function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'iop-console-wifi-'));
  dirs.push(dir);
  return dir;
}

function agentFor(dir: string, meshEnabled = true): ConsoleAgent {
  const unused = () => { throw new Error('not used here'); };
  return {
    identity: unused, status: unused, logs: unused, pairing: undefined as never, claimPending: unused, restart: unused,
    setBroker: (url) => storeBroker(dir, url),
    meshEnabled,
    setWifi: (iface, wifi) => storeWifi(dir, iface, wifi),
  };
}

function run(line: string, agent: ConsoleAgent): { json: Record<string, unknown>; text: string } {
  const answer = execute(line, agent)!.answer;
  return { json: JSON.parse(render(answer, true)) as Record<string, unknown>, text: render(answer, false) };
}

/** A mesh box's configuration as the config file gives it, validated by the real schema. */
function meshConfig(links: unknown[]): MeshConfig {
  return validateConfig({
    uplink: { ack: 'gateway', gatewayKeys: ['ab'.repeat(32)] },
    mesh: { enabled: true, keyFile: '/etc/iop-agent/mesh.key', links },
  }, 'test').mesh;
}

test.after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test('set wifi answers in both forms and stores the setting', () => {
  const dir = stateDir();
  const agent = agentFor(dir);
  const set = run('set wifi wlan0 80211s iop-mesh 6', agent);
  assert.equal(set.json, { ok: true, interface: 'wlan0', wifi: { mode: '80211s', meshId: 'iop-mesh', channel: 6 }, storedIn: join(dir, SETTINGS_FILE), restartNeeded: true });
  assert.match(set.text, /^WiFi: wlan0 joins 802\.11s mesh 'iop-mesh' on channel 6; stored in .*; type restart to apply it\.$/);
  assert.not.match(render(execute('set wifi wlan0 80211s iop-mesh 6 --json', agent)!.answer, true), /\n/);
  run('set wifi wlan1 ibss "field mesh" 36', agent);
  run('set broker mqtt://gw.local', agent);
  assert.equal(readConsoleSettings(dir), {
    broker: 'mqtt://gw.local',
    wifi: { wlan0: { mode: '80211s', meshId: 'iop-mesh', channel: 6 }, wlan1: { mode: 'ibss', meshId: 'field mesh', channel: 36 } },
  });
  const off = run('set wifi wlan0 off', agent);
  assert.equal(off.json.wifi, null);
  assert.match(off.text, /^WiFi: wlan0 left alone \(no WiFi setup\); stored in .*restart/);
  assert.equal(readConsoleSettings(dir).wifi, { wlan0: null, wlan1: { mode: 'ibss', meshId: 'field mesh', channel: 36 } });
});

test('invalid set wifi lines: refused by the schema rules, nothing stored', () => {
  const dir = stateDir();
  const agent = agentFor(dir);
  const cases: [string, string, RegExp][] = [
    ['set wifi wlan0 80211s iop-mesh 15', 'BAD_VALUE', /^channel: expected a WiFi channel: 1 to 14, or a 5 GHz channel 32 to 177$/],
    ['set wifi wlan0 80211s iop-mesh 0', 'BAD_VALUE', /^channel: expected a WiFi channel/],
    ['set wifi wlan0 adhoc iop-mesh 6', 'BAD_VALUE', /^mode: expected one of .*80211s.*ibss/],
    ['set wifi wlan0 ibss iop-mesh six', 'BAD_VALUE', /^channel: expected number/],
    [`set wifi wlan0 80211s ${'m'.repeat(33)} 6`, 'BAD_VALUE', /^meshId: expected at most 32 characters \(an SSID\)$/],
    ['set wifi bad/name 80211s iop-mesh 6', 'BAD_VALUE', /^interface 'bad\/name': .*expected a network interface name, e.g. wlan0$/],
    ['set wifi averyveryverylongname off', 'BAD_VALUE', /expected a network interface name/],
    ['set wifi wlan0', 'USAGE', /^usage: set wifi <interface> 80211s\|ibss <meshId> <channel>, or set wifi <interface> off$/],
    ['set wifi wlan0 80211s iop-mesh', 'USAGE', /^usage: set wifi/],
    ['set wifi wlan0 off now', 'USAGE', /^usage: set wifi/],
    ['set wifi', 'USAGE', /^usage: set wifi/],
  ];
  for (const [line, code, message] of cases) {
    const { json, text } = run(line, agent);
    assert.is(json.ok, false, line);
    assert.is(json.code, code, line);
    assert.match(json.error as string, message, `${line}: ${json.error}`);
    assert.is(text, `error: ${json.error}`);
    assert.not.match(text, /\n/);
  }
  assert.equal(readConsoleSettings(dir), {});
});

test('a box without the mesh refuses set wifi with the reason', () => {
  const dir = stateDir();
  const { json, text } = run('set wifi wlan0 80211s iop-mesh 6', agentFor(dir, false));
  assert.is(json.code, 'MESH_OFF');
  assert.match(text, /^error: the mesh is not enabled on this box: .*mesh\.enabled .*key file/);
  assert.equal(readConsoleSettings(dir), {});
});

test('help lists set wifi', () => {
  const { json, text } = run('help', agentFor(stateDir()));
  assert.ok((json.commands as { usage: string }[]).some((c) => c.usage.includes('wifi <if> 80211s|ibss <meshId> <channel>')));
  assert.match(text, /wifi <if> off/);
});

test('the stored setting changes the mesh links at start; off removes it', () => {
  const dir = stateDir();
  const agent = agentFor(dir);
  const config = meshConfig([
    { type: 'udp', interface: 'eth0', port: 5000, group: '239.1.2.3' },
    { type: 'udp', interface: 'wlan0', port: 5000, group: '239.1.2.3', wifi: { mode: 'ibss', meshId: 'old', channel: 1 } },
    { type: 'kiss', path: '/dev/ttyUSB0', radio: { region: 'EU868', frequencyHz: 869_525_000, bandwidthHz: 125_000, spreadingFactor: 9, codingRate: 5, txPowerDbm: 14 } },
  ]);
  const start = () => applyWifiSettings(config, readConsoleSettings(dir).wifi ?? {});
  assert.equal(start(), config, 'nothing stored: the config file as it is');

  run('set wifi wlan0 80211s iop-mesh 11', agent);
  run('set wifi eth0 ibss lab 6', agent);
  run('set wifi wlan1 80211s iop-mesh 40', agent);
  const links = start().links;
  assert.equal(links, [
    { type: 'udp', interface: 'eth0', port: 5000, group: '239.1.2.3', wifi: { mode: 'ibss', meshId: 'lab', channel: 6 } },
    { type: 'udp', interface: 'wlan0', port: 5000, group: '239.1.2.3', wifi: { mode: '80211s', meshId: 'iop-mesh', channel: 11 } },
    config.links[2],
    // no UDP link on wlan1 in the file: one is added, on the mesh's port and group
    { type: 'udp', interface: 'wlan1', port: 5000, group: '239.1.2.3', wifi: { mode: '80211s', meshId: 'iop-mesh', channel: 40 } },
  ]);
  assert.equal(config.links[1], { type: 'udp', interface: 'wlan0', port: 5000, group: '239.1.2.3', wifi: { mode: 'ibss', meshId: 'old', channel: 1 } }, 'the loaded config is not changed in place');

  run('set wifi wlan0 off', agent);
  run('set wifi wlan1 off', agent);
  const after = start().links;
  assert.equal(after[1], { type: 'udp', interface: 'wlan0', port: 5000, group: '239.1.2.3' }, 'off: the file\'s wifi is gone too');
  assert.not.ok('wifi' in after[1]!);
  assert.is(after.length, 3, 'off on an interface without a link adds none');
});

test('an added link takes the defaults when the mesh has no UDP link; a mesh that is off is left alone', () => {
  const kissOnly = meshConfig([{ type: 'kiss', path: '/dev/ttyUSB0', radio: { region: 'EU868', frequencyHz: 869_525_000, bandwidthHz: 125_000, spreadingFactor: 9, codingRate: 5, txPowerDbm: 14 } }]);
  const wifi = { wlan0: { mode: 'ibss' as const, meshId: 'm', channel: 1 } };
  assert.equal(applyWifiSettings(kissOnly, wifi).links[1], { type: 'udp', interface: 'wlan0', port: 4791, group: '239.255.73.80', wifi: wifi.wlan0 });
  const off = validateConfig({}, 'test').mesh;
  assert.is(applyWifiSettings(off, wifi), off);
});

test('a hand-edited settings file: bad wifi entries are dropped, good ones kept', () => {
  const dir = stateDir();
  writeFileSync(join(dir, SETTINGS_FILE), JSON.stringify({
    wifi: { wlan0: { mode: '80211s', meshId: 'ok', channel: 6 }, wlan1: { mode: '80211s', meshId: 'bad', channel: 200 }, 'no/pe': null, wlan2: null, wlan3: 'on' },
  }));
  assert.equal(readConsoleSettings(dir).wifi, { wlan0: { mode: '80211s', meshId: 'ok', channel: 6 }, wlan2: null });
  writeFileSync(join(dir, SETTINGS_FILE), JSON.stringify({ wifi: ['wlan0'] }));
  assert.equal(readConsoleSettings(dir).wifi, {});
});

test.run();
