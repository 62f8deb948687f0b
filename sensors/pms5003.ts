// Plantower PMS5003 particulate sensor on a UART (9600 baud). Active mode (the
// default) sends a frame about every second by itself; passive mode answers a request,
// sent at start and at every read: a read returns the answer to the previous request,
// and a request left unanswered makes the next read fail as silent.
import { Pms5003Parser, PMS5003_ACTIVE, PMS5003_PASSIVE, PMS5003_READ, type Pms5003Frame } from '../drivers/uart-sensors/pms5003.ts';
import { checkRange, type Sensor } from './sensor.ts';
import { createUartSensor, type UartSensorContext, type UartSensorOptions } from './uart-sensor.ts';

export interface Pms5003Options extends UartSensorOptions {
  mode?: 'active' | 'passive' | undefined;
}

/** The PMS5003's effective range is 0..500 ug/m3; its maximum reading 1000. */
const MAX_UG_M3 = 1000;

export function createPms5003Sensor(options: Pms5003Options, context: UartSensorContext, staleMs = 10_000): Sensor {
  const parser = new Pms5003Parser();
  const passive = options.mode === 'passive';
  let latest: Pms5003Frame | undefined;
  return createUartSensor(options, {
    kind: 'pms5003',
    defaultBaud: 9600,
    staleMs,
    greeting: passive ? PMS5003_PASSIVE : PMS5003_ACTIVE,
    request: passive ? PMS5003_READ : undefined,
    feed: (bytes) => {
      const frames = parser.push(bytes);
      if (frames.length > 0) latest = frames[frames.length - 1];
      return frames.length;
    },
    badChecksums: () => parser.badChecksums,
    records: () => {
      const frame = latest!;
      return [
        { n: 'pm1', u: 'ug/m3', v: checkRange(options.name, 'PM1.0', frame.pm1, 0, MAX_UG_M3) },
        { n: 'pm25', u: 'ug/m3', v: checkRange(options.name, 'PM2.5', frame.pm25, 0, MAX_UG_M3) },
        { n: 'pm10', u: 'ug/m3', v: checkRange(options.name, 'PM10', frame.pm10, 0, MAX_UG_M3) },
      ];
    },
  }, context);
}
