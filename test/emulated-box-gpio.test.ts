// GPIO on a real kernel: the emulated arm64 box (images/emulated-box) with a gpio-sim
// chip, the agent configured with a pulse counter and a door contact on its lines, the
// host toggling the lines through the rig's control channel. The counted total in the
// signed readings is exactly the number of pulses, and the door follows its line, on
// both paths the agent has: sysfs with onoff (epoll addon) and the character device
// with libgpiod's tools.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { join } from 'node:path';
import { bootWithBroker, deviceOf, makeDisk, prepareImage, type EmulatedBox } from './helpers/emulated-box.ts';
import { testIf } from './helpers/requires.ts';
import { readings, testDeployment, until } from './helpers/system.ts';

const { dir, broker, launch } = testDeployment(test);
const { image, missing } = await prepareImage(dir.path);
const PULSES = 10;

const boxes: EmulatedBox[] = [];
test.after(async () => {
  for (const box of boxes) await box.stop();
});

function config(gpio: 'sysfs' | 'chardev'): string {
  // Lines by the chip's label (the rig names its gpio-sim bank iop-sim) and offset.
  return `version: 1
stateDir: /var/lib/iop-agent
sampling: { intervalMs: 500 }
hardware: { gpio: ${gpio} }
sensors:
  - { type: pulse, name: rain, chip: iop-sim, line: 3, edge: falling, debounceMs: 20, factor: 1, unit: count }
  - { type: gpio-input, name: door, chip: iop-sim, line: 5 }
`;
}

type Record = { n: string; v?: number; vb?: boolean };
const recordsOf = (device: string) => readings(launchedSubscriber!).filter((r) => r.device === device)
  .map((r) => (r as unknown as { records: Record[] }).records);
let launchedSubscriber: ReturnType<typeof launch> | undefined;

async function gpioRun(gpio: 'sysfs' | 'chardev'): Promise<void> {
  launchedSubscriber ??= launch(['subscribe', '--broker', broker.url, '--json']);
  await until('subscriber connected', () => /connected/.test(launchedSubscriber!.stderr()), 15_000);
  const box = await bootWithBroker(image!, makeDisk(join(dir.path, `${gpio}.img`)), dir.path, broker.port, {
    iop_config: Buffer.from(config(gpio)).toString('base64'),
    ...(gpio === 'sysfs' ? { iop_gpio_export: '1' } : {}),
  });
  boxes.push(box);
  // Idle levels before the agent opens the lines: the counter's line high, the door closed (low).
  assert.is(await box.control('pull 3 up'), 'ok');
  assert.is(await box.control('pull 5 down'), 'ok');
  const device = await deviceOf(box);
  await box.waitFor(new RegExp(`GPIO through ${gpio}`), 60_000);
  // The agent's word that no edge is missed from now on: both lines watched (on the
  // character device: gpiomon holds the line, as gpioinfo shows).
  await box.waitFor(/sensors armed \(no edge missed from now on\): rain, door\s*$/m, 60_000);
  const latest = (name: string) => recordsOf(device).flat().filter((r) => r.n === name).at(-1);
  await until('first readings with the GPIO sensors', () => latest('door') !== undefined && latest('rain/count') !== undefined, 90_000, 250);
  assert.is(latest('door')!.vb, false);
  assert.is(latest('rain/count')!.v, 0);

  // Each level held 300 ms: the emulated CPU is ten times slower than a Pi's. The
  // character device queues every edge with its direction; sysfs tells only that the
  // value changed, and a pulse over before the agent reads the value shows as a release
  // without a press, which the counter counts as the pulse it was (two pulses inside
  // the agent's reaction time would be one).
  for (let i = 0; i < PULSES; i++) {
    assert.is(await box.control('pull 3 down'), 'ok');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.is(await box.control('pull 3 up'), 'ok');
    await new Promise((resolve) => setTimeout(resolve, 300));
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
  await box.stop();
}

const noSysfs = missing ?? image?.noGpioSim ?? (image && !image.addons.includes('epoll.node') ? 'needs the arm64 epoll addon (npm run build:addons; g++-aarch64-linux-gnu)' : undefined);
const noChardev = missing ?? image?.noGpioSim;
// The two boxes boot and count at the same time (a boot is tens of seconds under
// emulation); each test waits for its own box.
const runs = new Map<'sysfs' | 'chardev', Promise<void>>();
function run(gpio: 'sysfs' | 'chardev'): Promise<void> {
  let running = runs.get(gpio);
  if (!running) {
    running = gpioRun(gpio);
    running.catch(() => {}); // reported by its own test
    runs.set(gpio, running);
  }
  return running;
}
testIf(noSysfs, `sysfs with onoff: ${PULSES} pulses counted exactly, the door follows its line`, () => {
  if (!noChardev) void run('chardev');
  return run('sysfs');
});
testIf(noChardev, `character device with libgpiod: ${PULSES} pulses counted exactly, the door follows its line`, () => run('chardev'));

test.run();
