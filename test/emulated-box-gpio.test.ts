// GPIO on a real kernel: the emulated arm64 box (images/emulated-box) with a gpio-sim
// chip, the agent configured with a pulse counter and a door contact on its lines, the
// host toggling the lines through the rig's control channel. The counted total in the
// signed readings is exactly the number of pulses, and the door follows its line, on
// both paths the agent has: the character device with libgpiod's tools, then, in the
// same guest (a boot is the slow part under emulation), the agent stopped, the lines
// exported to sysfs and the agent started again on them with onoff (epoll addon).
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { join } from 'node:path';
import { bootWithBroker, deviceOf, makeDisk, prepareImage, type EmulatedBox } from './helpers/emulated-box.ts';
import { testIf } from './helpers/requires.ts';
import { readings, testDeployment, until } from './helpers/system.ts';

const { dir, broker, launch } = testDeployment(test);
const { image, missing } = await prepareImage(dir.path);
const PULSES = 10;
// How long each level is held. The character device queues every edge with its kernel
// timestamp and direction: 100 ms is five debounce times. sysfs tells only that the
// value changed, and a pulse over before the agent reads the value shows as a release
// without a press, which the counter counts as the pulse it was (two pulses inside the
// agent's reaction time would be one): 300 ms, as the emulated CPU is ten times slower
// than a Pi's.
const HOLD_MS = { chardev: 100, sysfs: 300 } as const;

const boxes: EmulatedBox[] = [];
test.after(async () => {
  for (const box of boxes) await box.stop();
});

function config(gpio: Gpio): string {
  // Lines by the chip's label (the rig names its gpio-sim bank iop-sim) and offset. Each
  // path has its own state dir: its own device, its pulse total from zero.
  return `version: 1
stateDir: /var/lib/iop-agent/${gpio}
sampling: { intervalMs: 500 }
hardware: { gpio: ${gpio} }
sensors:
  - { type: pulse, name: rain, chip: iop-sim, line: 3, edge: falling, debounceMs: 20, factor: 1, unit: count }
  - { type: gpio-input, name: door, chip: iop-sim, line: 5 }
`;
}
type Gpio = 'sysfs' | 'chardev';
const base64 = (text: string) => Buffer.from(text).toString('base64');

type Record = { n: string; v?: number; vb?: boolean };
const recordsOf = (device: string) => readings(launchedSubscriber!).filter((r) => r.device === device)
  .map((r) => (r as unknown as { records: Record[] }).records);
let launchedSubscriber: ReturnType<typeof launch> | undefined;

// One box for both paths: booted with the agent on the character device (lines not
// exported: an exported line is busy for gpiomon).
let booting: Promise<EmulatedBox> | undefined;
function theBox(): Promise<EmulatedBox> {
  booting ??= (async () => {
    // The subscriber starts while the box boots; the tests take the latest readings.
    launchedSubscriber ??= launch(['subscribe', '--broker', broker.url, '--json']);
    const box = await bootWithBroker(image!, makeDisk(join(dir.path, 'box.img')), dir.path, broker.port, { iop_config: base64(config('chardev')) });
    boxes.push(box);
    return box;
  })();
  return booting;
}

/** Idle levels before the agent opens the lines: the counter's line high, the door closed (low). */
async function idleLevels(box: EmulatedBox): Promise<void> {
  assert.is(await box.control('pull 3 up'), 'ok');
  assert.is(await box.control('pull 5 down'), 'ok');
}

/** The agent (started from console offset `from` on) counts the pulses exactly, the door follows. */
async function gpioRun(box: EmulatedBox, gpio: Gpio, from: number): Promise<void> {
  await until('subscriber connected', () => /connected/.test(launchedSubscriber!.stderr()), 15_000);
  const device = await deviceOf(box, from);
  await box.waitFor(new RegExp(`GPIO through ${gpio}`), 60_000, from);
  // The agent's word that no edge is missed from now on: both lines watched (on the
  // character device: gpiomon holds the line, as gpioinfo shows).
  await box.waitFor(/sensors armed \(no edge missed from now on\): rain, door\s*$/m, 60_000, from);
  const latest = (name: string) => recordsOf(device).flat().filter((r) => r.n === name).at(-1);
  await until('first readings with the GPIO sensors', () => latest('door') !== undefined && latest('rain/count') !== undefined, 90_000, 250);
  assert.is(latest('door')!.vb, false);
  assert.is(latest('rain/count')!.v, 0);

  for (let i = 0; i < PULSES; i++) {
    assert.is(await box.control('pull 3 down'), 'ok');
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS[gpio]));
    assert.is(await box.control('pull 3 up'), 'ok');
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS[gpio]));
  }
  assert.is(await box.control('pull 5 up'), 'ok');
  await until(`the count at ${PULSES} and the door open`, () => latest('rain/count')?.v === PULSES && latest('door')?.vb === true, 60_000, 250)
    .catch((err: Error) => {
      throw new Error(`${err.message}: count ${latest('rain/count')?.v}, door ${latest('door')?.vb}; the box:\n${box.output().slice(-2500)}`);
    });
  // Nothing more is counted afterwards.
  const seen = recordsOf(device).length;
  await until('two more readings', () => recordsOf(device).length >= seen + 2, 30_000, 250);
  assert.is(latest('rain/count')!.v, PULSES);
  assert.is(await box.control('pull 5 down'), 'ok');
  await until('the door closed again', () => latest('door')?.vb === false, 30_000, 250);
}

const noChardev = missing ?? image?.noGpioSim;
const noSysfs = noChardev ?? (image && !image.addons.includes('epoll.node') ? 'needs the arm64 epoll addon (npm run build:addons; g++-aarch64-linux-gnu)' : undefined);

testIf(noChardev, `character device with libgpiod: ${PULSES} pulses counted exactly, the door follows its line`, async () => {
  const box = await theBox();
  await idleLevels(box);
  await gpioRun(box, 'chardev', 0);
});

testIf(noSysfs, `sysfs with onoff: ${PULSES} pulses counted exactly, the door follows its line`, async () => {
  const box = await theBox();
  // The box reconfigured: the agent stopped (its gpiomon processes release the lines),
  // the lines exported for the gpio group (the Buildroot tree's udev rule on a real box),
  // the agent started again on sysfs.
  assert.is(await box.control('agent stop', 30_000), 'ok');
  assert.is(await box.control('gpio-export'), 'ok');
  await idleLevels(box);
  const from = box.output().length;
  assert.is(await box.control(`agent start ${base64(config('sysfs'))}`, 30_000), 'ok');
  await gpioRun(box, 'sysfs', from);
});

test.run();
