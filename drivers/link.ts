// One interface for every medium a box talks to its neighbours over: simulated radio,
// UDP on WiFi ad hoc/802.11s or Ethernet, and (later) serial LoRa modems.
export interface ReceivedFrame {
  data: Uint8Array;
  /** Link-layer address of the sender on this link. */
  from: string;
  /** Set on a unicast frame for another box that this radio overheard (links that overhear). */
  to?: string;
  /** Signal strength and signal-to-noise ratio, where the radio reports them. */
  rssi?: number;
  snr?: number;
}

export interface LinkStats {
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  /** Milliseconds this box has occupied the channel. */
  airtimeMs: number;
}

export interface Link {
  /** Names the link in logs and status, e.g. "udp:veth0" or "sim". */
  readonly name: string;
  /** Largest frame, in bytes, the link carries. */
  readonly mtu: number;
  /** This box's address on the link. */
  readonly address: string;
  /** A shared medium where frames for others are heard too (radio), as opposed to switched IP. */
  readonly overhears: boolean;
  readonly stats: LinkStats;
  /** Time on air of a frame of `bytes`, in ms (0 for wired links). */
  airtimeMs(bytes: number): number;
  /** Airtime, in ms, the box may still spend now under the link's duty-cycle rule. */
  budgetMs(): number;
  /** Sends to one neighbour, or to every neighbour in range when `to` is undefined. */
  send(data: Uint8Array, to?: string): void;
  onReceive(handler: (frame: ReceivedFrame) => void): void;
  close(): void;
  /** Link-specific figures for status (a radio's airtime in the last hour, budget left, errors). */
  report?(): Record<string, unknown>;
}

export function emptyLinkStats(): LinkStats {
  return { txFrames: 0, txBytes: 0, rxFrames: 0, rxBytes: 0, airtimeMs: 0 };
}
