// Uptime from a box's status messages as the gateway saw them (docs/protocol.md, Status):
// a birth or heartbeat ("online": true) keeps the box up until the next status or until
// three heartbeat intervals pass without one; a last will or clean stop ("online": false)
// ends it at once.

export interface StatusEvent {
  /** Unix seconds the gateway saw it */
  time: number;
  online: boolean;
  /** the box's heartbeat interval, s (statusEveryS; a box with its own uplink has its MQTT will instead) */
  everyS?: number | undefined;
}

/** Seconds online within [startS, endS). `defaultEveryS` for statuses that name no interval. */
export function uptimeSeconds(events: readonly StatusEvent[], startS: number, endS: number, defaultEveryS = 300): number {
  const sorted = [...events].sort((a, b) => a.time - b.time);
  let total = 0;
  for (let i = 0; i < sorted.length; i++) {
    const e = sorted[i]!;
    if (!e.online) continue;
    const next = sorted[i + 1]?.time ?? Infinity;
    const silentAfter = e.time + 3 * (e.everyS ?? defaultEveryS);
    const from = Math.max(startS, e.time);
    const to = Math.min(endS, next, silentAfter);
    if (to > from) total += to - from;
  }
  return total;
}
