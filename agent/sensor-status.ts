// The sensors' and the clock's part of the box's status (control socket): per sensor its
// health with failures by cause and the last error; the time quality and clock jumps;
// the GPS position when there is one.
import type { Box } from './box.ts';

export function sensorStatus(box: Pick<Box, 'sensors' | 'time' | 'position'>) {
  return {
    sensors: box.sensors.map((sensor) => ({ name: sensor.name, kind: sensor.kind, ...sensor.health() })),
    time: box.time.status(),
    position: box.position() ?? null,
  };
}
