// UART sensors on pseudo-terminals (socat), opened through @serialport/stream like a
// real /dev/ttyAMA0, against emulators of the PMS5003 (active and passive), the SDS011
// and a GPS. A silent or garbled sensor fails only its own reads, at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openUartSensorPort, type UartPort } from '../drivers/serial/uart-sensor-port.ts';
import { encodePms5003Frame, PMS5003_PASSIVE, PMS5003_READ } from '../drivers/uart-sensors/pms5003.ts';
import { encodeSds011Frame } from '../drivers/uart-sensors/sds011.ts';
import { nmeaSentence } from '../drivers/uart-sensors/nmea.ts';
import { createPms5003Sensor } from '../sensors/pms5003.ts';
import { createSds011Sensor } from '../sensors/sds011.ts';
import { createGpsSensor, type GpsTimeFix } from '../sensors/gps.ts';
import { SensorError, type Sensor, type SensorRecord } from '../sensors/sensor.ts';
import { sensorFailure } from './helpers/sensor-failure.ts';
import { ptyPair, socatMissing, type PtyPair } from './helpers/pty-pair.ts';

const missing = socatMissing();
const dir = mkdtempSync(join(tmpdir(), 'iop-uart-'));
const context = { openUart: openUartSensorPort, monotonic: () => performance.now(), reopenMs: 200 };
const NOW = Date.UTC(2026, 11, 1);
const cleanups: (() => Promise<void>)[] = [];

async function withTimeout<T>(what: string, ms: number, run: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([run(), new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: timed out`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads until the sensor gives records (or the deadline passes). */
async function firstReading(sensor: Sensor, ms = 5_000): Promise<SensorRecord[]> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      return await sensor.read(NOW);
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`no reading from ${sensor.name}: ${String(last)}`);
}

const failureOf = (sensor: Sensor) => sensorFailure(sensor.read(NOW));

/** The emulator's end of a pty pair, with what the agent wrote to it. */
async function emulator(name: string): Promise<{ pair: PtyPair; port: UartPort; received: number[] }> {
  const pair = await ptyPair(dir, name);
  const received: number[] = [];
  const port = await openUartSensorPort(pair.device, 9600, { onData: (b) => received.push(...b), onClose: () => {} });
  cleanups.push(async () => { await port.close(); await pair.close(); });
  return { pair, port, received };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(condition: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(50);
  }
}

test.after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('pms5003 active: split frames and garbage between them; bad checksums and silence fail only this sensor', async () => {
  if (missing) return console.log(`skip: ${missing}`);
  await withTimeout('pms5003 active', 30_000, async () => {
    const { pair, port } = await emulator('pms');
    const sensor = createPms5003Sensor({ name: 'pm', path: pair.agent }, context, 600);
    await sensor.start();
    cleanups.push(() => sensor.stop());
    const frame = encodePms5003Frame({ pm1: 4, pm25: 9, pm10: 15 });
    await port.write(new Uint8Array([0x13, 0x42, 0x00, 0x4d]));
    await port.write(frame.subarray(0, 11));
    await sleep(30);
    await port.write(frame.subarray(11));
    assert.equal(await firstReading(sensor), [
      { n: 'pm1', u: 'ug/m3', v: 4 }, { n: 'pm25', u: 'ug/m3', v: 9 }, { n: 'pm10', u: 'ug/m3', v: 15 },
    ]);
    // Only bad frames now: once the good one is stale the reads fail with the cause.
    const bad = encodePms5003Frame({ pm1: 1, pm25: 1, pm10: 1 });
    bad[30] = bad[30]! ^ 0x55;
    await until(async () => (await failureOf(sensor).catch(() => undefined))?.failure === 'silent');
    await port.write(bad);
    let checksum: SensorError | undefined;
    await until(async () => (checksum = await failureOf(sensor)).failure === 'checksum');
    checksum = checksum!;
    assert.match(checksum.message, /^pm: checksum: 1 frames with bad checksums/);
    // Nothing more: silent. The read fails at once, it does not wait for the wire.
    const silent = await failureOf(sensor);
    assert.is(silent.failure, 'silent');
    // ...and it settles before any I/O could: a silent sensor never holds up a tick.
    const outcome = sensor.read(NOW).then(() => 'value', () => 'failed');
    assert.is(await Promise.race([outcome, new Promise((r) => setImmediate(() => r('pending')))]), 'failed');
    // It comes back: used again without a restart.
    await port.write(encodePms5003Frame({ pm1: 5, pm25: 6, pm10: 7 }));
    assert.equal((await firstReading(sensor)).map((r) => r.v), [5, 6, 7]);
    assert.is(sensor.health().causes.checksum, 1);
    assert.ok(sensor.health().causes.silent! >= 1);
  });
});

test('pms5003 passive: switched to passive at open, asked at every read', async () => {
  if (missing) return console.log(`skip: ${missing}`);
  await withTimeout('pms5003 passive', 30_000, async () => {
    const { pair, port, received } = await emulator('pmsp');
    const sensor = createPms5003Sensor({ name: 'pm', path: pair.agent, mode: 'passive' }, context);
    await sensor.start();
    cleanups.push(() => sensor.stop());
    // The emulator answers each read request with one frame.
    let answered = 0;
    const responder = setInterval(() => {
      const text = Buffer.from(received).toString('hex');
      const requests = text.split(Buffer.from(PMS5003_READ).toString('hex')).length - 1;
      while (answered < requests) { answered++; void port.write(encodePms5003Frame({ pm1: answered, pm25: 20, pm10: 30 })); }
    }, 20);
    cleanups.push(async () => clearInterval(responder));
    assert.equal((await firstReading(sensor)).map((r) => r.v).slice(1), [20, 30]);
    assert.equal(Array.from(received.slice(0, PMS5003_PASSIVE.length)), Array.from(PMS5003_PASSIVE), 'passive mode set first');
    assert.ok(answered >= 1);
    // The sensor stops answering: the read after an unanswered request fails as silent.
    clearInterval(responder);
    await sleep(100);
    await sensor.read(NOW).catch(() => undefined);
    const silent = await failureOf(sensor);
    assert.is(silent.failure, 'silent');
    assert.match(silent.message, /no answer on .* to the last request/);
  });
});

test('sds011: values in ug/m3; a missing port is a failure until it appears, then read', async () => {
  if (missing) return console.log(`skip: ${missing}`);
  await withTimeout('sds011', 30_000, async () => {
    const later = join(dir, 'sds-agent');
    const sensor = createSds011Sensor({ name: 'pm2', path: later }, context);
    await sensor.start();
    cleanups.push(() => sensor.stop());
    const gone = await failureOf(sensor);
    assert.is(gone.failure, 'missing');
    assert.match(gone.message, /sds-agent/);
    const { port } = await emulator('sds');
    const writer = setInterval(() => void port.write(encodeSds011Frame({ pm25: 8.4, pm10: 17.9 })), 100);
    cleanups.push(async () => clearInterval(writer));
    assert.equal(await firstReading(sensor, 10_000), [{ n: 'pm25', u: 'ug/m3', v: 8.4 }, { n: 'pm10', u: 'ug/m3', v: 17.9 }]);
  });
});

test('gps: no fix is a failure; a fix gives lat, lon, alt and the satellites\' time; any talker', async () => {
  if (missing) return console.log(`skip: ${missing}`);
  await withTimeout('gps', 30_000, async () => {
    const { pair, port } = await emulator('gps');
    const times: GpsTimeFix[] = [];
    let where: { lat: number; lon: number } | undefined;
    const sensor = createGpsSensor({ name: 'position', path: pair.agent }, { ...context, onTime: (fix) => times.push(fix), onPosition: (p) => { where = p; } });
    await sensor.start();
    cleanups.push(() => sensor.stop());
    await sleep(100);
    await port.write(Buffer.from(nmeaSentence('GPGGA,000012,,,,,0,00,99.9,,,,,,') + nmeaSentence('GPRMC,000012,V,,,,,,,060180,,,N')));
    await until(async () => (await failureOf(sensor)).failure === 'no-fix');
    assert.is(times.length, 0, 'a receiver without a fix is no time source');
    await port.write(Buffer.from('$GNGGA,bad*00\r\n' + nmeaSentence('GNGGA,101530.00,5230.1234,N,01324.5678,E,1,09,0.9,34.5,M,40.1,M,,')
      + nmeaSentence('GNRMC,101530.00,A,5230.1234,N,01324.5678,E,0.0,0.0,011226,,,A')));
    assert.equal(await firstReading(sensor), [
      { n: 'lat', u: 'lat', v: 52.5020567 }, { n: 'lon', u: 'lon', v: 13.4094633 }, { n: 'alt', u: 'm', v: 34.5 },
    ]);
    assert.is(times.length, 1);
    assert.equal([where?.lat, where?.lon], [52.5020567, 13.4094633], 'the box knows where it is');
    assert.is(times[0]!.utcMs, Date.UTC(2026, 11, 1, 10, 15, 30));
  });
});

test.run();
