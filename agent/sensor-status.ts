// The sensors' and the clock's part of the box's status (control socket): per sensor its
// health with failures by cause and the last error (and for edge-following sensors
// whether they are armed); the time quality and clock jumps;
// the GPS position when there is one.
import type { Box } from './box.ts';

export function sensorStatus(box: Pick<Box, 'sensors' | 'time' | 'position'>) {
  return {
    // `armed` only for sensors that follow edges: whether none can be missed right now.
    sensors: box.sensors.map((sensor) => ({ name: sensor.name, kind: sensor.kind, ...sensor.health(), ...(sensor.armed ? { armed: sensor.armed() } : {}) })),
    time: box.time.status(),
    position: box.position() ?? null,
  };
}
