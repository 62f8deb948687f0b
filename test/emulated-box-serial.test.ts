// The emulated arm64 box's two 16550 UARTs (pci-serial, each on a host pty) in real
// use, on one boot: the field console on /dev/ttyS0, through which the tech's command on
// the host pairs the box to an owner; and a KISS radio on /dev/ttyS1, wired to a host-side
// emulated TNC on the simulated LoRa medium, meshing with an `iop-agent run` box on the
// host that has the Mosquitto uplink: the guest's readings reach Mosquitto through it and
// verify there. Skipped where qemu-system-aarch64 or Debian's arm64 packages are missing.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { bootBox, deviceOf, makeDisk, prepareImage, type EmulatedBox } from './helpers/emulated-box.ts';
import { fieldPairing } from './helpers/field-session.ts';
import { runCli } from './helpers/cli.ts';
import { within } from './helpers/pty.ts';
import { kissLink, radioBoxConfig, radioDeployment, RADIO_TEST_TIMERS, TEST_RADIO } from './helpers/radio-mesh.ts';
import { MESH_KEY } from './helpers/netns.ts';
import { testIf } from './helpers/requires.ts';
import { gatewayKey, readings, until, type Running } from './helpers/system.ts';
import { KissTnc } from './emulators/modems.ts';
import { attachPty } from './emulators/pty.ts';

const { dir, broker, launch, channel: newChannel } = radioDeployment(test);
const { image, missing } = await prepareImage(dir.path);

/** The guest's configuration: a console on the first UART, a KISS radio on the second, no broker. */
function guestConfig(gatewayKey: string): string {
  return `version: 1
stateDir: /var/lib/iop-agent
sampling: { intervalMs: 3000 }
sensors: [{ type: simulated, name: temperature, quantity: temperature }]
console: { tty: /dev/ttyS0, baud: 115200 }
uplink: { broker: null, ack: gateway, gatewayKeys: [${gatewayKey}], ackTimeoutMs: 3000 }
mesh: { enabled: true, keyFile: /etc/iop-agent/mesh.key, ackTimeoutMs: 5000, receiptHoldMs: 2000, timers: ${JSON.stringify(RADIO_TEST_TIMERS)}, links: [${JSON.stringify(kissLink('/dev/ttyS1'))}] }
`;
}

interface Rig { box: EmulatedBox; device: string; host: Running; subscriber: Running; gateway: Running }
let rig: Promise<Rig> | undefined;
let booted: EmulatedBox | undefined;
test.after(async () => {
  await booted?.stop();
});

/** The gateway and a subscriber on the test's Mosquitto, the host box on its radio, then the guest, once. */
function guest(): Promise<Rig> {
  rig ??= (async () => {
    const gatewayDir = join(dir.path, 'gw');
    const key = await gatewayKey(gatewayDir);
    // The guest boots meanwhile: its agent reaches the host only through its radio, put
    // on the medium below once the host's side is up.
    const booting = bootBox({
      kernel: image!.kernel, initrd: image!.initrd, disk: makeDisk(join(dir.path, 'guest.img')), dir: dir.path,
      params: { iop_config: Buffer.from(guestConfig(key)).toString('base64'), iop_mesh_key: MESH_KEY },
    });
    booting.then((box) => (booted = box), () => {}); // awaited below
    const gateway = launch(['gateway', '--broker', broker.url, '--state-dir', gatewayDir, '--allow-any']);
    const subscriber = launch(['subscribe', '--broker', broker.url, '--json']);
    await until('gateway and subscriber connected', () => /connected/.test(gateway.stderr()) && /connected/.test(subscriber.stderr()), 15_000);
    const channel = newChannel({ rangeM: 1000 });
    const hostRadio = join(dir.path, 'host-radio');
    await channel.add(hostRadio, 0, () => new KissTnc(TEST_RADIO));
    const host = launch(['run', '--config', radioBoxConfig(dir.path, 'host', [kissLink(hostRadio)], { broker: broker.url, gatewayKey: key })]);
    const box = await booting;
    // The guest's radio, 500 m from the host's: in range of each other.
    await channel.add(box.radioPty, 500, () => new KissTnc(TEST_RADIO), attachPty);
    channel.connect();
    return { box, device: await deviceOf(box), host, subscriber, gateway };
  })();
  return rig;
}

testIf(missing, 'console over a real UART: the tech command on the host pairs the box through /dev/ttyS0; status shows the owner', async () => {
  const { box } = await guest();
  await box.waitFor(/console on \/dev\/ttyS0 at 115200 baud/, 90_000);
  // Answering once the agent reads the port: until then QEMU's UART has no reader.
  await within(60_000, 'the console answering on the host pty', (async () => {
    while ((await runCli(['console', box.consolePty, '--json', 'id'], { timeoutMs: 20_000 })).code !== 0) await new Promise((r) => setTimeout(r, 500));
  })());
  const owner = Wallet.createRandom();
  const { output, code, stderr } = await fieldPairing(box.consolePty, owner);
  assert.is(code, 0, `${stderr}\n${output}`);
  assert.match(output, /Paired: owner 0x/);
  const status = await runCli(['console', box.consolePty, '--json', 'status'], { timeoutMs: 30_000 });
  assert.is(status.code, 0, status.stderr);
  const answer = JSON.parse(status.stdout.toString());
  assert.is(answer.owner, owner.address);
  assert.is(answer.device, await deviceOf(box));
  // Recorded on the box's disk, for the agent only, and logged there.
  assert.match(await box.control('stat /var/lib/iop-agent/owner.json'), /^stat [46]00 iop-agent iop-agent$/);
  await box.waitFor(new RegExp(`paired to owner ${owner.address}`), 30_000);
});

testIf(missing, "a KISS radio on the guest's /dev/ttyS1, wired to a host-side emulated TNC, meshes with a box on the host: the guest's readings reach Mosquitto through it and verify", async () => {
  const { box, device, host, subscriber, gateway } = await guest();
  const fromGuest = () => readings(subscriber).filter((r) => r.device === device);
  await until("3 of the guest's readings verified at Mosquitto", () => new Set(fromGuest().filter((r) => r.valid).map((r) => r.seq)).size >= 3, 240_000, 500)
    .catch((err: Error) => {
      throw new Error(`${err.message}\nhost box:\n${host.stderr().slice(-2000)}\nguest:\n${box.output().slice(-2500)}`);
    });
  // Every reading of the guest the consumer took is signed by the guest and chained.
  const seen = fromGuest();
  assert.ok(seen.every((r) => r.valid), JSON.stringify(seen));
  const seqs = [...new Set(seen.map((r) => r.seq))].sort((a, b) => a - b);
  assert.equal(seqs.slice(0, 3), [0, 1, 2], `the guest's chain from its first reading: ${seqs.join(',')}`);
  assert.not.match(subscriber.stderr(), /rejected/);
  // The guest's own view, on its console: the host box is its neighbour over the radio
  // and its way to an uplink.
  const mesh = JSON.parse((await runCli(['console', box.consolePty, '--json', 'mesh'], { timeoutMs: 30_000 })).stdout.toString()).mesh;
  assert.ok(mesh.neighbours.length >= 1 && mesh.uplinkVia, JSON.stringify(mesh));
  assert.match(host.stderr(), /connected to mqtt/);
  assert.not.match(gateway.stderr(), /rejected/);
});

test.run();
