// Problems first: what is wrong with the box, each with what to do about it. The page
// shows them as a banner above everything else.
import type { StatusState } from './state.ts';

export interface Problem { id: string; text: string; action: string }

const DISK_FULL_PERCENT = 90;

export function findProblems(state: Omit<StatusState, 'problems'>, context: { nowMs: number; noUplinkAlertS: number }): Problem[] {
  const problems: Problem[] = [];
  const { uplink, mesh, box } = state;
  const downSinceMs = uplink.downSinceMs;
  if (!uplink.connected && !uplink.viaMesh && downSinceMs !== null && context.nowMs - downSinceMs >= context.noUplinkAlertS * 1000) {
    const minutes = Math.floor((context.nowMs - downSinceMs) / 60_000);
    problems.push({
      id: 'uplink',
      text: `No uplink for ${minutes >= 1 ? `${minutes} min` : `${Math.round((context.nowMs - downSinceMs) / 1000)} s`}: readings wait on this box (${state.queue.waiting} queued).`,
      action: uplink.broker
        ? `Check the network and that the broker ${uplink.broker} is reachable${mesh ? ', or that a mesh neighbour with an uplink is in range' : ''}.`
        : mesh ? 'No mesh neighbour offers a route to an uplink: bring a box with an uplink in range.' : 'No broker is configured: set uplink.broker (or --broker) or enable the mesh.',
    });
  }
  for (const s of state.sensors) {
    if (!s.ok) problems.push({ id: `sensor:${s.name}`, text: `Sensor ${s.name} (${s.kind}) is failing${s.error ? `: ${s.error}` : ''}.`, action: 'Check its wiring and power; its readings are missing until it answers again.' });
  }
  for (const l of mesh?.links ?? []) {
    if (l.budgetLeftMs !== null && l.budgetLeftMs <= 0) {
      problems.push({ id: `budget:${l.name}`, text: `Link ${l.name} used its duty-cycle budget for this hour.`, action: 'It sends again as the hour rolls on; if this repeats, sample less often or add an uplink closer to this box.' });
    }
  }
  if (box.disk && box.disk.percent > DISK_FULL_PERCENT) {
    problems.push({ id: 'disk', text: `The state directory's disk is ${box.disk.percent} % full.`, action: 'Free space on the disk, or bring the uplink back so stored readings are receipted and removed.' });
  }
  if (box.time.quality === 'none') {
    problems.push({ id: 'clock', text: 'The clock is not synchronised: readings carry time since boot only.', action: 'Give the box network time (NTP) or a GPS fix.' });
  }
  return problems;
}
