// RNode: a LoRa modem that speaks KISS framing with its own command set on top (the
// numbers clash with plain KISS's TXDELAY etc., so it is a dialect of its own). The
// driver probes with DETECT; only a modem that answers gets any other command.
import { encodeKiss } from './kiss.ts';

export const RNODE = {
  FREQUENCY: 0x01,
  BANDWIDTH: 0x02,
  TXPOWER: 0x03,
  SF: 0x04,
  CR: 0x05,
  RADIO_STATE: 0x06,
  DETECT: 0x08,
  READY: 0x0f,
  STAT_RSSI: 0x23,
  STAT_SNR: 0x24,
  FW_VERSION: 0x50,
  ERROR: 0x90,
} as const;
export const DETECT_REQUEST = 0x73;
export const DETECT_RESPONSE = 0x46;
export const RADIO_ON = 0x01;
/** RNode reports RSSI as an unsigned byte offset by this many dB. */
export const RSSI_OFFSET = 157;

export interface RNodeRadio {
  frequencyHz: number;
  bandwidthHz: number;
  spreadingFactor: number;
  /** 5..8 for 4/5..4/8 */
  codingRate: number;
  txPowerDbm: number;
}

export type RNodeEvent =
  | { t: 'detect' }
  | { t: 'firmware'; major: number; minor: number }
  | { t: 'frequency' | 'bandwidth'; value: number }
  | { t: 'txpower' | 'sf' | 'cr' | 'radiostate'; value: number }
  | { t: 'rssi'; dbm: number }
  | { t: 'snr'; db: number }
  | { t: 'ready' }
  | { t: 'error'; code: number };

const u32 = (n: number) => Uint8Array.of((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);

export function detectFrame(): Uint8Array {
  return encodeKiss(RNODE.DETECT, Uint8Array.of(DETECT_REQUEST));
}

export function firmwareRequestFrame(): Uint8Array {
  return encodeKiss(RNODE.FW_VERSION, Uint8Array.of(0x00));
}

/** The settings an RNode echoes back, one per command, in the order they are sent. */
export function configurationFrames(radio: RNodeRadio): { frame: Uint8Array; expect: RNodeEvent }[] {
  const settings: [number, Uint8Array, RNodeEvent][] = [
    [RNODE.FREQUENCY, u32(radio.frequencyHz), { t: 'frequency', value: radio.frequencyHz }],
    [RNODE.BANDWIDTH, u32(radio.bandwidthHz), { t: 'bandwidth', value: radio.bandwidthHz }],
    [RNODE.TXPOWER, Uint8Array.of(radio.txPowerDbm & 0xff), { t: 'txpower', value: radio.txPowerDbm }],
    [RNODE.SF, Uint8Array.of(radio.spreadingFactor), { t: 'sf', value: radio.spreadingFactor }],
    [RNODE.CR, Uint8Array.of(radio.codingRate), { t: 'cr', value: radio.codingRate }],
    [RNODE.RADIO_STATE, Uint8Array.of(RADIO_ON), { t: 'radiostate', value: RADIO_ON }],
  ];
  return settings.map(([command, data, expect]) => ({ frame: encodeKiss(command, data), expect }));
}

/**
 * What a non-data KISS frame from an RNode says, or undefined for a frame this driver
 * does not know or whose length is wrong for its command (the caller counts those).
 */
export function parseRNodeFrame(command: number, data: Uint8Array): RNodeEvent | undefined {
  const one = data.length === 1 ? data[0]! : undefined;
  const four = data.length === 4 ? ((data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!) >>> 0 : undefined;
  switch (command) {
    case RNODE.DETECT: return one === DETECT_RESPONSE ? { t: 'detect' } : undefined;
    case RNODE.FW_VERSION: return data.length === 2 ? { t: 'firmware', major: data[0]!, minor: data[1]! } : undefined;
    case RNODE.FREQUENCY: return four !== undefined ? { t: 'frequency', value: four } : undefined;
    case RNODE.BANDWIDTH: return four !== undefined ? { t: 'bandwidth', value: four } : undefined;
    case RNODE.TXPOWER: return one !== undefined ? { t: 'txpower', value: one > 127 ? one - 256 : one } : undefined;
    case RNODE.SF: return one !== undefined ? { t: 'sf', value: one } : undefined;
    case RNODE.CR: return one !== undefined ? { t: 'cr', value: one } : undefined;
    case RNODE.RADIO_STATE: return one !== undefined ? { t: 'radiostate', value: one } : undefined;
    case RNODE.STAT_RSSI: return one !== undefined ? { t: 'rssi', dbm: one - RSSI_OFFSET } : undefined;
    case RNODE.STAT_SNR: return one !== undefined ? { t: 'snr', db: (one > 127 ? one - 256 : one) / 4 } : undefined;
    case RNODE.READY: return { t: 'ready' };
    case RNODE.ERROR: return one !== undefined ? { t: 'error', code: one } : undefined;
    default: return undefined;
  }
}

export function sameEvent(a: RNodeEvent, b: RNodeEvent): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
