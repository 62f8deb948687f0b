// Mesh configuration mistakes are clear errors naming the field, before anything runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from './helpers/cli.ts';

const dir = tempDir();
test.after(() => dir.remove());

const GATEWAY_KEY = 'cd'.repeat(32);

function configFile(name: string, mesh: unknown, uplink: unknown = { gatewayKeys: [GATEWAY_KEY] }): string {
  const file = join(dir.path, `${name}.json`);
  writeFileSync(file, JSON.stringify({ stateDir: join(dir.path, name), uplink, mesh }));
  return file;
}

const cases: [string, unknown, RegExp][] = [
  ['no key file', { enabled: true, links: [{ type: 'udp', interface: 'lo' }] }, /mesh\.keyFile.*a mesh needs a key file/],
  ['no links', { enabled: true, keyFile: '/nonexistent' }, /mesh\.links.*at least one link/],
  ['a group that is not multicast', { enabled: true, keyFile: 'k', links: [{ type: 'udp', interface: 'lo', group: '10.0.0.1' }] }, /mesh\.links\[0\]\.group: expected an IPv4 multicast address/],
  ['an unknown link type', { enabled: true, keyFile: 'k', links: [{ type: 'lora', interface: 'lo' }] }, /mesh\.links\[0\]\.type: expected one of .udp./],
  ['an unknown key', { enabled: true, keyFile: 'k', links: [], hops: 3 }, /mesh.*hops/],
  ['a window too large', { window: 1000 }, /mesh\.window/],
];

for (const [what, mesh, message] of cases) {
  test(`mesh config with ${what} is refused naming the field`, async () => {
    const result = await runCli(['config', '--config', configFile(what.replace(/\W+/g, '-'), mesh)]);
    assert.is(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
  });
}

test('a mesh box with broker acknowledgements is refused: readings through the mesh need gateway receipts', async () => {
  const file = join(dir.path, 'broker-ack.json');
  writeFileSync(file, JSON.stringify({ stateDir: join(dir.path, 'broker-ack'), uplink: { ack: 'broker' }, mesh: { enabled: true, keyFile: 'k', links: [{ type: 'udp', interface: 'lo' }] } }));
  const result = await runCli(['config', '--config', file]);
  assert.is(result.code, 2, result.stderr);
  assert.match(result.stderr, /uplink\.ack: a mesh box deletes readings only on gateway receipts/);
});

test('a mesh box with no gateway keys is refused naming uplink.gatewayKeys: it would trust whichever box signs first', async () => {
  const mesh = { enabled: true, keyFile: 'k', links: [{ type: 'udp', interface: 'lo' }] };
  for (const uplink of [{}, { gatewayKeys: [] }]) {
    const file = configFile('no-gateway-keys', mesh, uplink);
    const checked = await runCli(['config', '--config', file]);
    assert.is(checked.code, 2, checked.stderr);
    assert.match(checked.stderr, /uplink\.gatewayKeys: a mesh box trusts only the gateways listed here/);
    const run = await runCli(['run', '--config', file], { timeoutMs: 20_000 });
    assert.is(run.code, 2, run.stderr);
    assert.match(run.stderr, /uplink\.gatewayKeys/);
  }
  // Without the mesh an empty list still means: pin the first gateway seen.
  const plain = await runCli(['config', '--config', configFile('plain-box', { enabled: false }, {})]);
  assert.is(plain.code, 0, plain.stderr);
});

test('a key file that is not 64 hex digits, and an interface that does not exist, stop run with exit 2 and say why', async () => {
  const badKey = join(dir.path, 'bad.key');
  writeFileSync(badKey, 'not a key\n', { mode: 0o600 });
  const run1 = await runCli(['run', '--config', configFile('badkey', { enabled: true, keyFile: badKey, links: [{ type: 'udp', interface: 'lo' }] })], { timeoutMs: 20_000 });
  assert.is(run1.code, 2);
  assert.match(run1.stderr, /mesh\.keyFile .*bad\.key: expected 64 hex digits/);
  const goodKey = join(dir.path, 'good.key');
  writeFileSync(goodKey, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
  const run2 = await runCli(['run', '--config', configFile('noiface', { enabled: true, keyFile: goodKey, links: [{ type: 'udp', interface: 'nosuch0' }] })], { timeoutMs: 20_000 });
  assert.is(run2.code, 2);
  assert.match(run2.stderr, /mesh\.links: network interface 'nosuch0' does not exist/);
});

test('iop-agent mesh without a running agent says so', async () => {
  const result = await runCli(['mesh', '--state-dir', join(dir.path, 'nobody')]);
  assert.is(result.code, 1);
  assert.match(result.stderr, /no agent is running with state dir .*nobody/);
});

test.run();
