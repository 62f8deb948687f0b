// The emulated arm64 box (images/emulated-box, npm run image) in QEMU: Debian's arm64
// kernel, the arm64 single executable built from this checkout and started by the
// Buildroot tree's init script as its own user. Its signed readings reach a Mosquitto
// on the host and verify there; a power cut (kill -9 of QEMU) mid-sampling loses
// nothing the gateway acknowledged and reuses no sequence number.
// Skipped where qemu-system-aarch64 or Debian's arm64 packages are unavailable.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { bootWithBroker, deviceOf, makeDisk, prepareImage, type EmulatedBox } from './helpers/emulated-box.ts';
import { testIf } from './helpers/requires.ts';
import { gatewayKey, readings, testDeployment, until, type Running } from './helpers/system.ts';

const { dir, broker, launch } = testDeployment(test);

const { image, missing } = await prepareImage(dir.path);

const boxes: EmulatedBox[] = [];
test.after(async () => {
  for (const box of boxes) await box.stop();
});

async function boot(disk: string, params: Record<string, string> = {}): Promise<EmulatedBox> {
  const box = await bootWithBroker(image!, disk, dir.path, broker.port, params);
  boxes.push(box);
  return box;
}

function assertChain(seen: { seq: number; valid: boolean; chain: string }[]): number[] {
  const seqs = seen.map((r) => r.seq);
  assert.equal(seqs, seqs.map((_, i) => i), `every seq once, in order from 0: ${seqs.join(',')}`);
  for (const r of seen) assert.ok(r.valid && (r.chain === 'ok' || (r.seq === 0 && r.chain === 'start')), `seq ${r.seq}: ${JSON.stringify(r)}`);
  return seqs;
}

async function gatewayAndSubscriber(name: string): Promise<{ gateway: Running; subscriber: Running }> {
  const gwDir = join(dir.path, `gw-${name}`);
  await gatewayKey(gwDir);
  const gateway = launch(['gateway', '--broker', broker.url, '--state-dir', gwDir, '--allow-any']);
  const subscriber = launch(['subscribe', '--broker', broker.url, '--json']);
  await until('gateway and subscriber connected', () => /connected/.test(gateway.stderr()) && /connected/.test(subscriber.stderr()), 15_000);
  return { gateway, subscriber };
}

/** The gateway's final counters: nothing rejected, nothing missing in any chain. */
async function assertGatewayClean(gateway: Running): Promise<{ accepted: number; receipts: number }> {
  const stats = JSON.parse((await gateway.stop()).stdout.toString());
  assert.equal(Object.values(stats.rejected as Record<string, number>).filter((n) => n > 0), [], JSON.stringify(stats));
  assert.is(stats.missing, 0, JSON.stringify(stats));
  return stats;
}

// One box, one disk, one gateway for the whole file: a boot costs tens of seconds
// under emulation, so the tests follow one box's life: boot, the rig, a power cut.
let box: EmulatedBox | undefined;
let deployment: { gateway: Running; subscriber: Running } | undefined;
const disk = () => join(dir.path, 'box.img');

async function runningBox(): Promise<{ box: EmulatedBox; gateway: Running; subscriber: Running }> {
  if (!box) {
    const first = !existsSync(disk());
    if (first) makeDisk(disk());
    // The first boot goes on while the gateway and the subscriber start, its agent held
    // until they are connected: the subscriber must see the chain from its first reading.
    // The boot after the power cut starts the agent from init, as a box does.
    const booting = boot(disk(), first ? { iop_hold: '1' } : {});
    booting.catch(() => {}); // awaited below
    deployment ??= await gatewayAndSubscriber('box');
    box = await booting;
    if (first) assert.is(await box.control('agent start', 30_000), 'ok');
  }
  return { box, ...deployment! };
}

testIf(missing, 'boot: the agent starts from its init script as its own user, makes its key, and its signed readings verify on the host', async () => {
  const { box, subscriber } = await runningBox();
  await box.waitFor(/iop-box: ready/, 60_000);
  const device = await deviceOf(box);
  await until('6 readings from the box at the host', () => readings(subscriber).filter((r) => r.device === device).length >= 6, 120_000, 250);
  assertChain(readings(subscriber).filter((r) => r.device === device));
  assert.is(await box.control('agent-user'), 'agent-user iop-agent');
  assert.is(await box.control('stat /var/lib/iop-agent'), 'stat 700 iop-agent iop-agent');
  assert.match(await box.control('stat /var/lib/iop-agent/device.key'), /^stat [46]00 iop-agent iop-agent$/);
  const [rss = 0, anon = 0, file = 0, shmem = 0] = (/^rss (\d+) (\d+) (\d+) (\d+)/.exec(await box.control('rss')) ?? []).slice(1).map(Number);
  const mb = (kB: number) => `${(kB / 1024).toFixed(1)} MB`;
  // The executable lives in the initramfs (tmpfs): its mapped pages count as shared memory.
  // A figure, not an assertion (memory goes in figures): issue 11's goal is 60 MB.
  console.log(`emulated box: the arm64 agent's RSS while sampling and publishing: ${mb(rss)} ` +
    `(anonymous ${mb(anon)}, file-backed ${mb(file)}, executable pages mapped from the initramfs ${mb(shmem)}); ` +
    `goal <= 60 MB ${rss <= 60 * 1024 ? 'MET' : 'NOT MET'}`);
  assert.ok(rss > 0);
  assert.not.match(subscriber.stderr(), /rejected/);
});

testIf(missing ?? image?.noGpioSim, 'the rig: gpio-sim lines the host pulls toggle in the guest kernel (sysfs); both 16550 UARTs carry bytes from host ptys', async () => {
  const { box } = await runningBox();
  const sim = await box.waitFor(/iop-box: gpio-sim (\/dev\/gpiochip\d+) sysfs base (\d+)/, 60_000);
  await box.waitFor(/iop-box: ready/, 60_000);
  assert.is(await box.control(`stat ${sim[1]}`), 'stat 660 root gpio', 'the character device belongs to the gpio group');
  // Ten pulses on line 3, each level read back by the guest's kernel; line 0 stays put.
  for (let i = 0; i < 10; i++) {
    assert.is(await box.control('pull 3 up'), 'ok');
    assert.is(await box.control('level 3'), 'level 1');
    assert.is(await box.control('pull 3 down'), 'ok');
    assert.is(await box.control('level 3'), 'level 0');
  }
  assert.is(await box.control('level 0'), 'level 0');
  for (const [tty, pty] of [['ttyS0', box.consolePty], ['ttyS1', box.radioPty]] as const) {
    // QEMU reads a pty only while its other end is open: keep it open meanwhile.
    const fd = openSync(pty, 'r+');
    try {
      const reply = box.control(`read-serial ${tty} hello`, 20_000);
      // The guest opens the port after the command arrives; send until the line lands.
      let received: string | undefined;
      void reply.then((r) => (received = r));
      for (let attempt = 0; received === undefined && attempt < 30; attempt++) {
        writeSync(fd, `hello ${tty}\n`);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      assert.is(await reply, `read-serial hello ${tty}`);
    } finally {
      closeSync(fd);
    }
  }
});

testIf(missing, 'power cut (kill -9 of QEMU) while sampling: after reboot the chain continues, no seq repeated, nothing acknowledged lost', async () => {
  const { box: first, gateway, subscriber } = await runningBox();
  const device = await deviceOf(first);
  const fromBox = () => readings(subscriber).filter((r) => r.device === device);
  const before = fromBox().length;
  await until('fresh readings before the cut', () => fromBox().length >= before + 3, 120_000, 250);
  // Mid-sampling: a reading every 500 ms, one is being signed or stored about now.
  await first.powerCut();
  box = undefined;
  const beforeCut = fromBox().length;
  const second = (await runningBox()).box;
  assert.is(await deviceOf(second), device, 'the same device key after the power cut');
  await until('readings after the reboot', () => fromBox().length >= beforeCut + 6, 120_000, 250);
  await second.stop();
  const seqs = assertChain(fromBox());
  assert.ok(seqs.length >= beforeCut + 6);
  assert.not.match(subscriber.stderr(), /rejected/, subscriber.stderr());
  // The gateway saw every reading once (a reading published again after the reboot
  // counts as a duplicate), no conflicting seq, no gap.
  const stats = await assertGatewayClean(gateway);
  assert.is(stats.accepted, seqs.length);
});

test.run();
