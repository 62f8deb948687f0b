// The single executables with the serial addon shipped beside them
// (<executable>.d/addons/serialport.node): the x64 one and the arm64 one under
// qemu-aarch64-static each open a pseudo-terminal and exchange KISS frames with the
// other through emulated radios, as two mesh neighbours.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { profileOf } from '../drivers/radio/lora-airtime.ts';
import { Channel } from './emulators/channel.ts';
import { KissTnc, RNodeModem } from './emulators/modems.ts';
import { haveCommand, haveSocat } from './emulators/pty.ts';
import { ROOT, runCli, tempDir } from './helpers/cli.ts';
import { kissLink, radioBoxConfig, TEST_RADIO } from './helpers/radio-mesh.ts';
import { gatewayKey, start, until, type Running } from './helpers/system.ts';

const SYSROOT = process.env.QEMU_LD_PREFIX ?? '/usr/aarch64-linux-gnu';
const dir = tempDir('iop-sea-serial-');
const running: Running[] = [];
let channel: Channel | undefined;
test.after(async () => {
  for (const r of running) await r.stop('SIGKILL');
  await channel?.close();
  dir.remove();
});

async function status(stateDir: string) {
  const result = await runCli(['mesh', '--json', '--state-dir', stateDir]);
  return result.code === 0 ? JSON.parse(result.stdout.toString()) : undefined;
}

if (!haveSocat() || !haveCommand('qemu-aarch64-static') || !existsSync(SYSROOT)) {
  console.log(`sea-serial: skipped, needs socat, qemu-aarch64-static and the arm64 libraries in ${SYSROOT}`);
} else {
  test('x64 and arm64 (under qemu) executables load the shipped serial addon and exchange KISS frames over ptys', async () => {
    const dist = join(dir.path, 'dist');
    execFileSync(process.execPath, [join(ROOT, 'images', 'build.ts'), '--out', dist], { stdio: 'pipe' });
    for (const arch of ['x64', 'arm64']) assert.ok(existsSync(join(dist, `iop-agent-linux-${arch}.d`, 'addons', 'serialport.node')), `${arch} addon beside the executable`);
    channel = new Channel({ profile: profileOf(TEST_RADIO) });
    const paths = [join(dir.path, 'tty-x64'), join(dir.path, 'tty-arm64')];
    await channel.add(paths[0]!, 0, () => new KissTnc(TEST_RADIO));
    await channel.add(paths[1]!, 500, () => new RNodeModem());
    channel.connect();
    const key = await gatewayKey(join(dir.path, 'gw'));
    const env = { IOP_AGENT_ADDONS: '' };
    const x64 = start(['run', '--config', radioBoxConfig(dir.path, 'x64', [kissLink(paths[0]!)], { gatewayKey: key })], { command: [join(dist, 'iop-agent-linux-x64')], env });
    const arm = start(['run', '--config', radioBoxConfig(dir.path, 'arm64', [kissLink(paths[1]!)], { gatewayKey: key })], { command: ['qemu-aarch64-static', '-L', SYSROOT, join(dist, 'iop-agent-linux-arm64')], env });
    running.push(x64, arm);
    await until('the arm64 box configured its RNode over the pty', () => /RNode configured/.test(arm.stderr()), 90_000).catch((err) => {
      throw new Error(`${err.message}\n${arm.stderr()}`);
    });
    assert.match(x64.stderr(), /plain KISS TNC/);
    let armNode = '';
    await until('each box hears the other', async () => {
      const [a, b] = [await status(join(dir.path, 'arm64')), await status(join(dir.path, 'x64'))];
      armNode = a?.node ?? '';
      return a?.neighbours.some((n: { node: string }) => n.node === b?.node) && b?.neighbours.some((n: { node: string }) => n.node === a?.node);
    }, 60_000);
    assert.ok(armNode);
    assert.ok(channel.airLog(1).length > 0 && channel.airLog(0).length > 0, 'both radios put frames on air');
  });
}

test.run();
