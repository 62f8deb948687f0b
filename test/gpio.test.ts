// GPIO without gpio-sim (this kernel lacks it): the chip-base translation on fixture
// sysfs trees (kernels before and after 6.6), and the character-device path with
// libgpiod's tools replaced by recorded fakes on PATH (test/fixtures/fake-gpiod):
// pulse counting with debounce, totals across restarts, chatter and stuck lines, a
// gpiomon that dies and is restarted, a door contact. When the QEMU rig with gpio-sim
// lands, these move onto real edges there.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sysfs } from '../drivers/sysfs.ts';
import { globalLineNumber } from '../drivers/gpio/chips.ts';
import { createGpiodCliProvider, gpioinfoArgs, gpiomonArgs, gpiogetArgs, lineHeldByGpiomon, parseGpiomonLine } from '../drivers/gpio/gpiod-cli.ts';
import { selectGpioProvider } from '../drivers/gpio/select.ts';
import type { EdgeEvent, GpioProvider } from '../drivers/gpio/line.ts';
import { createGpioInputSensor, createPulseSensor } from '../sensors/gpio-sensors.ts';
import { SensorError, type Sensor } from '../sensors/sensor.ts';
import { sensorStatus } from '../agent/sensor-status.ts';
import type { Box } from '../agent/box.ts';
import { FixtureSysfs } from './helpers/fixture-sysfs.ts';
import { sensorFailure as failure } from './helpers/sensor-failure.ts';

const dir = mkdtempSync(join(tmpdir(), 'iop-gpio-'));
const fakeDir = join(dir, 'fake');
mkdirSync(fakeDir);
process.env.FAKE_GPIO_DIR = fakeDir;
process.env.PATH = `${join(import.meta.dirname, 'fixtures', 'fake-gpiod')}:${process.env.PATH}`;
const NOW = Date.UTC(2026, 11, 1);
let provider: GpioProvider | undefined;

test.after(async () => {
  await provider?.close();
  rmSync(dir, { recursive: true, force: true });
});


async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('the same (chip, line) maps to the global sysfs number before and after kernel 6.6', async () => {
  const before = new FixtureSysfs(join(dir, 'k61'));
  before.gpioChip(0, 'pinctrl-bcm2711', 58, 'gpiochip0');
  before.gpioChip(504, 'raspberrypi-exp-gpio', 8, 'gpiochip1');
  const after = new FixtureSysfs(join(dir, 'k66'));
  after.gpioChip(512, 'pinctrl-bcm2711', 58, 'gpiochip0');
  after.gpioChip(570, 'raspberrypi-exp-gpio', 8, 'gpiochip1');
  const pi5 = new FixtureSysfs(join(dir, 'pi5'));
  pi5.gpioChip(571, 'pinctrl-rp1', 54, 'gpiochip0');
  for (const [fixture, main, expander] of [[before, 0, 504], [after, 512, 570]] as const) {
    const sysfs = new Sysfs(fixture.root);
    assert.is(await globalLineNumber(sysfs, { chip: 'gpiochip0', line: 17 }), main + 17);
    assert.is(await globalLineNumber(sysfs, { chip: 'pinctrl-bcm2711', line: 17 }), main + 17);
    assert.is(await globalLineNumber(sysfs, { chip: 'raspberrypi-exp-gpio', line: 2 }), expander + 2);
  }
  assert.is(await globalLineNumber(new Sysfs(pi5.root), { chip: 'gpiochip0', line: 17 }), 588);
  await assert.not.throws(async () => undefined);
  try {
    await globalLineNumber(new Sysfs(after.root), { chip: 'gpiochip0', line: 58 });
    assert.unreachable();
  } catch (err) {
    assert.match(String(err), /lines 0\.\.57/);
  }
  try {
    await globalLineNumber(new Sysfs(after.root), { chip: 'gpiochip9', line: 1 });
    assert.unreachable();
  } catch (err) {
    assert.match(String(err), /no such GPIO chip \(chips: gpiochip0 \(pinctrl-bcm2711, base 512\), gpiochip1/);
  }
});

test('libgpiod command lines (v1 and v2) and gpiomon output parsing', () => {
  const spec = { chip: 'gpiochip0', line: 17, bias: 'pull-up' as const };
  assert.equal(gpiogetArgs(1, spec), ['-B', 'pull-up', 'gpiochip0', '17']);
  assert.equal(gpiogetArgs(2, spec), ['--numeric', '--bias=pull-up', '-c', 'gpiochip0', '17']);
  assert.equal(gpiomonArgs(1, spec, 'falling'), ['-B', 'pull-up', '-f', '-b', '-F', '%e %s.%n', 'gpiochip0', '17']);
  assert.equal(gpiomonArgs(2, spec, 'both'), ['--bias=pull-up', '--edges=both', '--format=%e %S', '-c', 'gpiochip0', '17']);
  assert.equal(parseGpiomonLine(1, '0 12.500000000'), { level: 0, monotonicMs: 12_500 });
  assert.equal(parseGpiomonLine(2, '2 12.5'), { level: 0, monotonicMs: 12_500 });
  // v1 prints tv_nsec without padding: 5,000,000 ns is 5 ms, 9 ns is 9 ns.
  assert.equal(parseGpiomonLine(1, '0 12.5000000'), { level: 0, monotonicMs: 12_005 });
  assert.equal(parseGpiomonLine(1, '1 12.9'), { level: 1, monotonicMs: 12_000.000009 });
  assert.equal(parseGpiomonLine(1, '1 3.000000001')!.level, 1);
  assert.is(parseGpiomonLine(1, 'event: RISING EDGE offset: 17'), undefined);
  assert.is(parseGpiomonLine(1, '2 1.0'), undefined);
  assert.equal(gpioinfoArgs(1, spec), ['gpiochip0']);
  assert.equal(gpioinfoArgs(2, spec), ['-c', 'gpiochip0', '17']);
  // Armed: the kernel shows the line requested by gpiomon (v1 and v2 output).
  const v1 = 'gpiochip1 - 8 lines:\n\tline   3:      unnamed   "gpiomon"   input  active-high [used]\n\tline  13:      unnamed       unused   input  active-high \n';
  assert.ok(lineHeldByGpiomon(v1, 3));
  assert.not.ok(lineHeldByGpiomon(v1, 13));
  assert.not.ok(lineHeldByGpiomon(v1, 1));
  assert.ok(lineHeldByGpiomon('gpiochip1 - 8 lines:\n\tline   3:\tunnamed\tinput edges=both consumer="gpiomon"\n', 3));
  assert.not.ok(lineHeldByGpiomon('\tline   3:\tunnamed\tinput consumer="kernel"\n', 3));
});

test('no sysfs GPIO: the character device through libgpiod is chosen, and says why', async () => {
  const sysfs = new Sysfs(join(dir, 'no-gpio'));
  provider = await selectGpioProvider(sysfs, 'auto');
  assert.is(provider.backend, 'chardev');
  assert.match(provider.reason, /libgpiod v1 tools: no sysfs GPIO/);
});

/** The test's end of the fake gpiomon's FIFO for one line: opened once gpiomon reads it. */
async function edgeSource(line: number): Promise<{ send(events: string[]): Promise<void>; close(): Promise<void> }> {
  const fifo = join(fakeDir, `events-${line}`);
  if (!existsSync(fifo)) execFileSync('mkfifo', [fifo]);
  let handle: FileHandle | undefined;
  return {
    async send(events) {
      handle ??= await open(fifo, 'w');
      await handle.write(events.map((e) => `${e}\n`).join(''));
    },
    async close() {
      await handle?.close().catch(() => undefined);
      handle = undefined;
    },
  };
}

test('pulse counter on gpiomon: debounce, total and rate, kept across restarts; chatter and stuck not counted', async () => {
  provider ??= createGpiodCliProvider(1, 'test');
  let mono = 0;
  const stateDir = join(dir, 'state');
  const make = () => createPulseSensor(
    { name: 'rain', chip: 'gpiochip0', line: 17, edge: 'falling', debounceMs: 20, factor: 0.2794, unit: 'mm', maxHz: 50, stuckMs: 60_000, bias: 'pull-up' },
    { provider: async () => provider!, stateDir, monotonic: () => mono });
  const edges = await edgeSource(17);
  let rain: Sensor = make();
  await rain.start();
  // start() returns once gpiomon holds the line: from then on no edge is missed.
  assert.ok(rain.armed!(), 'armed after start');
  const status = sensorStatus({ sensors: [rain], time: { status: () => ({}) } as unknown as Box['time'], position: () => undefined });
  assert.is(status.sensors[0]!.armed, true, 'the status says so');
  assert.match(readFileSync(join(fakeDir, 'calls'), 'utf8'), /gpioinfo gpiochip0/);
  // Five clean tips 1 s apart, each with a bounce 5 ms later that must not count.
  const tips = [1, 2, 3, 4, 5].flatMap((s) => [`0 ${s}.000000000`, `0 ${s}.005000000`]);
  await edges.send(tips);
  await edges.send(['1 5.500000000']);
  await until(() => readFileSync(join(fakeDir, 'calls'), 'utf8').includes('gpiomon -B pull-up -b -F'));
  mono = 10_000;
  let records: Awaited<ReturnType<Sensor['read']>> = [];
  await until(() => false, 300).catch(() => undefined); // let the pipe drain
  records = await rain.read(NOW);
  assert.equal(records, [
    { n: 'total', u: 'mm', v: 1.397 }, { n: 'count', u: 'count', v: 5 },
    { n: 'interval', u: 'mm', v: 1.397 }, { n: 'rate', u: '/s', v: 0.5 },
  ]);

  // Chatter: 2000 edges in 10 s is over 50 Hz: reported, not counted.
  await edges.send(Array.from({ length: 2000 }, (_, i) => `${i % 2} ${(10 + i * 0.005).toFixed(9)}`));
  await until(() => false, 1000).catch(() => undefined);
  mono = 20_000;
  const chatter = await failure(rain.read(NOW));
  assert.is(chatter.failure, 'chatter');
  assert.match(chatter.message, /^rain: chatter: \d+ edges in 10\.0 s \(over 50 Hz\): not counted/);

  // A restart keeps the total.
  await edges.send(['1 30.000000000']);
  await rain.stop();
  await edges.close();
  rain = make();
  await rain.start();
  await edges.send(['0 40.000000000']);
  await until(() => false, 300).catch(() => undefined);
  mono = 30_000;
  assert.equal((await rain.read(NOW)).slice(0, 2), [{ n: 'total', u: 'mm', v: 1.6764 }, { n: 'count', u: 'count', v: 6 }]);

  // Stuck: the reed switch stays closed (line low) for over a minute.
  mono = 100_000;
  const stuck = await failure(rain.read(NOW));
  assert.is(stuck.failure, 'stuck');

  // gpiomon dies: it is restarted, and edges count again.
  const pid = Number(readFileSync(join(fakeDir, 'gpiomon-17.pid'), 'utf8'));
  // Killed before its FIFO's writer closes: at end of input the fake gpiomon exits by
  // itself, and a kill after that would find no process (ESRCH).
  process.kill(pid, 'SIGKILL');
  await edges.close();
  await until(() => Number(readFileSync(join(fakeDir, 'gpiomon-17.pid'), 'utf8')) !== pid);
  await edges.send(['1 50.000000000', '0 51.000000000']);
  await until(() => false, 300).catch(() => undefined);
  mono = 110_000;
  assert.equal((await rain.read(NOW))[1], { n: 'count', u: 'count', v: 7 });
  assert.equal(rain.health().causes, { stuck: 1 }, 'this instance (after the restart) saw the stuck line');
  await rain.stop();
  await edges.close();
  assert.equal(JSON.parse(readFileSync(join(stateDir, 'pulse', 'rain.json'), 'utf8')), { total: 7 });
});

test('pulse counter: a press and release the backend saw as one notification (sysfs on a busy box) counts as one pulse', async () => {
  let onEdge: ((event: EdgeEvent) => void) | undefined;
  const lineLevel: 0 | 1 = 1;
  const fake: GpioProvider = {
    backend: 'sysfs', reason: 'test',
    read: async () => lineLevel,
    watch: async (_spec, _edge, handler) => { onEdge = handler; return { armed: () => true, close: async () => {} }; },
    close: async () => {},
  };
  let mono = 0;
  const rain = createPulseSensor({ name: 'gauge', chip: 'gpiochip0', line: 4, edge: 'falling', debounceMs: 20 },
    { provider: async () => fake, stateDir: join(dir, 'collapsed'), monotonic: () => mono });
  await rain.start();
  assert.ok(rain.armed!());
  onEdge!({ level: 1, monotonicMs: 100 }); // released -> released: a whole pulse in between
  onEdge!({ level: 0, monotonicMs: 500 }); // a pulse seen edge by edge
  onEdge!({ level: 1, monotonicMs: 700 });
  onEdge!({ level: 1, monotonicMs: 710 }); // released again: another hidden pulse, 210 ms after the last counted edge
  onEdge!({ level: 1, monotonicMs: 715 }); // 5 ms later: bounce, not counted
  mono = 10_000;
  assert.equal((await rain.read(NOW))[1], { n: 'count', u: 'count', v: 3 });
  await rain.stop();
});

test('gpio-input: a door contact through gpioget, active low; a missing line is a local failure', async () => {
  provider ??= createGpiodCliProvider(1, 'test');
  const edges = await edgeSource(27);
  const door = createGpioInputSensor({ name: 'door', chip: 'gpiochip0', line: 27, bias: 'pull-up', activeLow: true }, async () => provider!);
  assert.is((await failure(door.read(NOW))).failure, 'io');
  writeFileSync(join(fakeDir, 'level-27'), '0\n');
  assert.equal(await door.read(NOW), [{ n: '', vb: true }]);
  assert.match(readFileSync(join(fakeDir, 'calls'), 'utf8'), /gpioget -B pull-up gpiochip0 27/);
  // From then on it follows the line with gpiomon instead of a process per read.
  await edges.send(['1 7.000000000']);
  await until(() => false, 300).catch(() => undefined);
  const gets = () => readFileSync(join(fakeDir, 'calls'), 'utf8').split('\n').filter((l) => l.startsWith('gpioget')).length;
  const before = gets();
  assert.equal(await door.read(NOW), [{ n: '', vb: false }], 'opened');
  assert.is(gets(), before, 'no gpioget while the watch runs');
  await door.stop();
  await edges.close();
});

test.run();
