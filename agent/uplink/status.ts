// What a box says about itself on its retained status topic (docs/protocol.md, "MQTT"):
// the birth message, the offline message, and what in them a person acts on.
import { toHex } from '../codec/hex.ts';
import type { Box } from '../box.ts';

export const CAPABILITIES = ['senml+cbor', 'cose-sign1', 'hash-chain', 'receipts'];

/** direct: the box's own MQTT session; mesh: through a neighbour that has one. */
export type UplinkKind = 'direct' | 'mesh';

export function birthStatus(box: Box, options: { version: string; ack: 'gateway' | 'broker'; uplink: UplinkKind; now?: number }): Record<string, unknown> {
  const stats = box.journal.stats();
  return {
    online: true,
    id: box.identity.id,
    version: options.version,
    publicKey: toHex(box.identity.publicKey),
    sensors: box.sensors.map((s) => ({ name: s.name, kind: s.kind, ok: s.health().ok })),
    capabilities: CAPABILITIES,
    uplink: options.uplink,
    ack: options.ack,
    queue: { stored: stats.stored, acked: stats.acked, dropped: stats.dropped, head: stats.head ?? null },
    time: (options.now ?? Date.now()) / 1000,
  };
}

export function offlineStatus(id: string, uplink: UplinkKind, now = Date.now()): Record<string, unknown> {
  return { online: false, id, time: now / 1000, uplink };
}

/** Queue lengths change with every reading: a status is worth sending again when this changes. */
export function statusChangeKey(box: Box): string {
  return JSON.stringify([box.journal.stats().dropped, box.sensors.map((s) => s.health().ok)]);
}
