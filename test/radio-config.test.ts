// mesh.links entries for serial radios and WiFi: what is accepted, what is refused
// naming the field, and the WiFi setup commands (through a runner the test replaces).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig } from '../agent/config/load.ts';
import { openMeshLinks, fittingFragmentBytes } from '../agent/mesh/links.ts';
import { createLogger } from '../agent/log.ts';
import type { Link } from '../drivers/link.ts';
import { runCli, tempDir } from './helpers/cli.ts';

/** A mesh box trusts receipts only from a configured gateway (any valid key will do here). */
const GATEWAY_KEY = 'ab'.repeat(32);

const dir = tempDir();
test.after(() => dir.remove());

const radio = { region: 'EU868', frequencyHz: 869_525_000, bandwidthHz: 250_000, spreadingFactor: 7, codingRate: 5, txPowerDbm: 14 };
const mesh = (links: unknown[]) => ({ enabled: true, keyFile: '/etc/iop-agent/mesh.key', links });

function configFile(name: string, body: unknown): string {
  const file = join(dir.path, `${name}.json`);
  writeFileSync(file, JSON.stringify({ stateDir: join(dir.path, name), uplink: { gatewayKeys: [GATEWAY_KEY] }, mesh: body }));
  return file;
}

test('the issue\'s example configuration is accepted with its defaults', async () => {
  const result = await runCli(['config', '--config', configFile('ok', mesh([
    { type: 'kiss', path: '/dev/ttyUSB0', baud: 115200, radio },
    { type: 'reyax', path: '/dev/ttyAMA0', radio: { ...radio, frequencyHz: 868_100_000, bandwidthHz: 125_000, spreadingFactor: 9 }, networkId: 18 },
    { type: 'udp', interface: 'wlan0', wifi: { mode: '80211s', meshId: 'iop', channel: 6 } },
  ]))]);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout.toString(), /maxFrameBytes/);
});

const refused: [string, unknown[], RegExp][] = [
  ['a channel outside every sub-band', [{ type: 'kiss', path: '/dev/ttyUSB0', radio: { ...radio, frequencyHz: 869_300_000 } }], /mesh\.links\[0\]\.radio\.frequencyHz: channel .* is not inside one EU868 sub-band/],
  ['a bandwidth that straddles two sub-bands', [{ type: 'kiss', path: '/dev/ttyUSB0', radio: { ...radio, frequencyHz: 868_500_000, bandwidthHz: 500_000 } }], /radio\.frequencyHz: channel/],
  ['an odd bandwidth', [{ type: 'kiss', path: '/dev/ttyUSB0', radio: { ...radio, bandwidthHz: 200_000 } }], /radio\.bandwidthHz: expected a LoRa bandwidth/],
  ['a spreading factor of 13', [{ type: 'kiss', path: '/dev/ttyUSB0', radio: { ...radio, spreadingFactor: 13 } }], /radio\.spreadingFactor/],
  ['a coding rate given as 1', [{ type: 'reyax', path: '/dev/ttyAMA0', radio: { ...radio, codingRate: 1 } }], /radio\.codingRate/],
  ['a relative serial path', [{ type: 'kiss', path: 'ttyUSB0', radio }], /mesh\.links\[0\]\.path: expected the absolute path of a serial device/],
  ['an odd baud rate', [{ type: 'reyax', path: '/dev/ttyAMA0', baud: 12345, radio }], /mesh\.links\[0\]\.baud: expected a standard baud rate/],
  ['a REYAX network id of 16', [{ type: 'reyax', path: '/dev/ttyAMA0', radio, networkId: 16 }], /mesh\.links\[0\]\.networkId: expected 3 to 15, or 18/],
  ['a radio without a region', [{ type: 'kiss', path: '/dev/ttyUSB0', radio: { ...radio, region: undefined } }], /radio\.region/],
  ['a WiFi channel 15', [{ type: 'udp', interface: 'wlan0', wifi: { mode: 'ibss', meshId: 'x', channel: 15 } }], /wifi\.channel: expected a WiFi channel/],
  ['a WiFi mode ap', [{ type: 'udp', interface: 'wlan0', wifi: { mode: 'ap', meshId: 'x', channel: 1 } }], /wifi\.mode/],
];

for (const [what, links, message] of refused) {
  test(`a link with ${what} is refused naming the field`, async () => {
    const result = await runCli(['config', '--config', configFile(what.replace(/\W+/g, '-'), mesh(links))]);
    assert.is(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
  });
}

test('wifi: brings the interface up as a mesh point or IBSS member through the runner; without wifi: nothing runs', async () => {
  const log = createLogger({ level: 'error' });
  const id = new Uint8Array(6).fill(1);
  for (const [mode, expect] of [
    ['80211s', [['ip', 'link set lo down'], ['iw', 'dev lo set type mp'], ['ip', 'link set lo up'], ['iw', 'dev lo mesh join box-mesh freq 2437']]],
    ['ibss', [['ip', 'link set lo down'], ['iw', 'dev lo set type ibss'], ['ip', 'link set lo up'], ['iw', 'dev lo ibss join box-mesh 2437']]],
  ] as const) {
    const ran: [string, string][] = [];
    const config = validateConfig({ uplink: { gatewayKeys: [GATEWAY_KEY] }, mesh: { ...mesh([{ type: 'udp', interface: 'lo', port: 20000 + Math.floor(Math.random() * 40000), wifi: { mode, meshId: 'box-mesh', channel: 6 } }]), keyFile: 'k' } }, 'test').mesh;
    const links = await openMeshLinks(config, id, log, async (command, args) => {
      ran.push([command, args.join(' ')]);
    }).catch((err) => err as Error);
    if (Array.isArray(links)) for (const l of links) l.close();
    assert.equal(ran, expect);
  }
  const ran: string[] = [];
  const plain = validateConfig({ uplink: { gatewayKeys: [GATEWAY_KEY] }, mesh: mesh([{ type: 'udp', interface: 'lo', port: 20000 + Math.floor(Math.random() * 40000) }]) }, 'test').mesh;
  const links = await openMeshLinks(plain, id, log, async (command) => {
    ran.push(command);
  }).catch((err) => err as Error);
  if (Array.isArray(links)) for (const l of links) l.close();
  assert.equal(ran, []);
});

test('fragments shrink to the smallest link: a data packet with every header at its widest fits a REYAX modem', () => {
  const link = (mtu: number) => ({ mtu }) as Link;
  assert.is(fittingFragmentBytes(180, [link(1200)]), 180);
  const reyax = fittingFragmentBytes(180, [link(1200), link(171)]);
  assert.ok(reyax < 180 && reyax > 100, String(reyax));
  assert.is(fittingFragmentBytes(180, [link(246)]), 180);
});

test.run();
