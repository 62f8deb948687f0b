// Nova SDS011 particulate sensor on a UART (9600 baud; in its default mode one frame a second).
import { Sds011Parser, type Sds011Frame } from '../drivers/uart-sensors/sds011.ts';
import { checkRange, type Sensor } from './sensor.ts';
import { createUartSensor, type UartSensorContext, type UartSensorOptions } from './uart-sensor.ts';

/** The SDS011 reports 0.0 to 999.9 ug/m3. */
const MAX_UG_M3 = 999.9;

export function createSds011Sensor(options: UartSensorOptions, context: UartSensorContext, staleMs = 10_000): Sensor {
  const parser = new Sds011Parser();
  let latest: Sds011Frame | undefined;
  return createUartSensor(options, {
    kind: 'sds011',
    defaultBaud: 9600,
    staleMs,
    feed: (bytes) => {
      const frames = parser.push(bytes);
      if (frames.length > 0) latest = frames[frames.length - 1];
      return frames.length;
    },
    badChecksums: () => parser.badChecksums,
    records: () => [
      { n: 'pm25', u: 'ug/m3', v: checkRange(options.name, 'PM2.5', latest!.pm25, 0, MAX_UG_M3) },
      { n: 'pm10', u: 'ug/m3', v: checkRange(options.name, 'PM10', latest!.pm10, 0, MAX_UG_M3) },
    ],
  }, context);
}
