// A GPS receiver on a UART (NMEA 0183). With a fix it gives the box's position (lat,
// lon, alt) and is a time source: every valid RMC with a date goes to `onTime`, with
// the monotonic time it arrived, so the clock code can tell true time without trusting
// the system clock. Sentences that are not GGA or RMC are ignored; bad checksums counted.
import { NmeaParser } from '../drivers/uart-sensors/nmea.ts';
import { SensorError, type Sensor, type SensorRecord } from './sensor.ts';
import { createUartSensor, type UartSensorContext, type UartSensorOptions } from './uart-sensor.ts';

export interface GpsTimeFix {
  /** Unix ms of the fix, from the satellites. */
  utcMs: number;
  /** Monotonic ms when the sentence arrived. */
  monotonicMs: number;
}

export interface GpsPosition {
  lat: number;
  lon: number;
  alt?: number | undefined;
  /** Monotonic ms of the fix. */
  monotonicMs: number;
}

export interface GpsContext extends UartSensorContext {
  onTime?: ((fix: GpsTimeFix) => void) | undefined;
  /** The box's position at every GGA with a fix (for the work that needs to know where the box is). */
  onPosition?: ((position: GpsPosition) => void) | undefined;
}

export function createGpsSensor(options: UartSensorOptions, context: GpsContext, staleMs = 10_000): Sensor {
  const parser = new NmeaParser();
  let position: { lat: number; lon: number; alt?: number | undefined } | undefined;
  let fix = false;
  return createUartSensor(options, {
    kind: 'gps',
    defaultBaud: 9600,
    staleMs,
    feed: (bytes, monotonicMs) => {
      const sentences = parser.push(bytes);
      for (const s of sentences) {
        if (s.type === 'GGA') {
          fix = s.quality > 0 && s.lat !== undefined && s.lon !== undefined;
          position = fix ? { lat: s.lat!, lon: s.lon!, alt: s.alt } : undefined;
          if (position) context.onPosition?.({ ...position, monotonicMs });
        } else if (s.valid && s.timeMs !== undefined) {
          context.onTime?.({ utcMs: s.timeMs, monotonicMs });
        }
      }
      return sentences.length;
    },
    badChecksums: () => parser.badChecksums,
    records: () => {
      if (!fix || !position) throw new SensorError(options.name, 'no-fix', `no GPS fix on ${options.path}`);
      const records: SensorRecord[] = [
        { n: 'lat', u: 'lat', v: position.lat },
        { n: 'lon', u: 'lon', v: position.lon },
      ];
      if (position.alt !== undefined) records.push({ n: 'alt', u: 'm', v: position.alt });
      return records;
    },
  }, context);
}
