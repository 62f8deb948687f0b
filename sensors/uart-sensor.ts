// What the UART sensors (PMS5003, SDS011, GPS) share: the port is opened at start and
// reopened while it is missing; bytes go to the sensor's pure parser as they come, and
// a read returns the latest good frame at once. A read never waits on the wire, so a
// silent sensor costs the others nothing; a frame older than `staleMs` is no value.
import type { UartOpener, UartPort } from '../drivers/serial/uart-sensor-port.ts';
import { HealthCounter, SensorError, type Sensor, type SensorRecord } from './sensor.ts';

export interface UartSensorOptions {
  name: string;
  path: string;
  baud?: number | undefined;
}

export interface UartSensorContext {
  openUart: UartOpener;
  /** Monotonic milliseconds. */
  monotonic: () => number;
  /** How long to wait before opening a missing port again (default 5 s). */
  reopenMs?: number | undefined;
}

export interface UartProtocol {
  kind: string;
  defaultBaud: number;
  /** A frame older than this is no value (the sensor went silent); with `request`, a
   * frame must instead answer the previous request. */
  staleMs: number;
  /** Sent once the port is open (e.g. a mode switch). */
  greeting?: Uint8Array | undefined;
  /** Sent at every read, for sensors that answer only when asked (passive mode). */
  request?: Uint8Array | undefined;
  /** Feeds bytes to the parser; returns how many good frames they completed. */
  feed(bytes: Uint8Array, monotonicMs: number): number;
  /** Frames whose checksum failed so far. */
  badChecksums(): number;
  /** The records of the latest good frame; throws a SensorError when it holds no value. */
  records(): SensorRecord[];
}

const REOPEN_MS = 5_000;

export function createUartSensor(options: UartSensorOptions, protocol: UartProtocol, context: UartSensorContext): Sensor {
  const health = new HealthCounter();
  const name = options.name;
  const baud = options.baud ?? protocol.defaultBaud;
  let port: UartPort | undefined;
  let portError = 'not opened yet';
  let lastFrameMs: number | undefined;
  let reopenTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  let checksumsAtLastRead = 0;
  /** Monotonic ms of the last request sent (sensors that answer only when asked). */
  let lastRequestMs: number | undefined;

  const open = async (): Promise<void> => {
    if (stopped || port) return;
    try {
      port = await context.openUart(options.path, baud, {
        onData: (bytes) => {
          const monotonicMs = context.monotonic();
          if (protocol.feed(bytes, monotonicMs) > 0) lastFrameMs = monotonicMs;
        },
        onClose: (error) => {
          port = undefined;
          portError = error?.message ?? `${options.path} closed`;
          scheduleReopen();
        },
      });
      if (stopped) { await port.close(); port = undefined; return; }
      if (protocol.greeting) await port.write(protocol.greeting);
      // Ask at once, so the first read already has an answer.
      if (protocol.request) {
        lastRequestMs = context.monotonic();
        await port.write(protocol.request);
      }
    } catch (err) {
      port = undefined;
      portError = err instanceof Error ? err.message : String(err);
      scheduleReopen();
    }
  };

  const scheduleReopen = () => {
    if (stopped || reopenTimer) return;
    reopenTimer = setTimeout(() => { reopenTimer = undefined; void open(); }, context.reopenMs ?? REOPEN_MS);
    reopenTimer.unref();
  };

  return {
    name,
    kind: protocol.kind,
    start: open,
    async stop() {
      stopped = true;
      clearTimeout(reopenTimer);
      await port?.close();
      port = undefined;
    },
    read: (nowMs) => health.track(nowMs, async () => {
      const now = context.monotonic();
      const checksums = protocol.badChecksums();
      const newBadFrames = checksums - checksumsAtLastRead;
      checksumsAtLastRead = checksums;
      const previousRequest = lastRequestMs;
      if (port && protocol.request) {
        lastRequestMs = now;
        port.write(protocol.request).catch(() => undefined);
      }
      // Asked-for frames (passive mode) must answer the previous request; others be fresh.
      const fresh = lastFrameMs !== undefined && (previousRequest !== undefined ? lastFrameMs >= previousRequest : now - lastFrameMs <= protocol.staleMs);
      if (!fresh) {
        if (!port) throw new SensorError(name, 'missing', `${options.path}: ${portError}`);
        if (newBadFrames > 0) throw new SensorError(name, 'checksum', `${newBadFrames} frames with bad checksums on ${options.path} and no good one`);
        if (previousRequest !== undefined) throw new SensorError(name, 'silent', `no answer on ${options.path} to the last request`);
        throw new SensorError(name, 'silent', `no frame on ${options.path} for ${lastFrameMs === undefined ? 'ever' : `${Math.round(now - lastFrameMs)} ms`}`);
      }
      return protocol.records();
    }),
    health: () => health.snapshot(),
  };
}
