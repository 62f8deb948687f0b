// The one line `systemctl status iop-agent` shows (STATUS=): queue, uplink, sensors.
import type { Box } from '../box.ts';
import type { Uplink } from '../uplink/uplink.ts';

export function agentStatusLine(box: Pick<Box, 'journal' | 'sensors'>, uplink: Pick<Uplink, 'session'> | undefined): string {
  const ok = box.sensors.filter((s) => s.health().ok).length;
  const link = uplink ? (uplink.session.connected ? 'uplink connected' : 'uplink down') : 'no uplink';
  return `${box.journal.count()} readings queued, ${link}, sensors ${ok}/${box.sensors.length} ok`;
}
