// LoRa time on air (Semtech AN1200.13). Real serial radios and the simulated medium use
// the same formula, so budgets computed in the simulator hold on a box.
export interface LoraProfile {
  spreadingFactor: number;
  bandwidthHz: number;
  /** 1..4 for coding rates 4/5..4/8 */
  codingRate: number;
  preambleSymbols: number;
  explicitHeader: boolean;
  crc: boolean;
}

/** SF9, 250 kHz, 4/5: a mid-range profile (255 B in about 0.64 s). */
export const SF9_BW250: LoraProfile = { spreadingFactor: 9, bandwidthHz: 250_000, codingRate: 1, preambleSymbols: 8, explicitHeader: true, crc: true };

/** SF7, 250 kHz, 4/5: the fast profile dense meshes use (255 B in about 0.2 s). */
export const SF7_BW250: LoraProfile = { spreadingFactor: 7, bandwidthHz: 250_000, codingRate: 1, preambleSymbols: 8, explicitHeader: true, crc: true };

/** Milliseconds on air for a frame of `bytes` payload bytes. */
export function loraAirtimeMs(bytes: number, p: LoraProfile): number {
  const symbolMs = (2 ** p.spreadingFactor / p.bandwidthHz) * 1000;
  // Low data rate optimisation is mandated when a symbol lasts longer than 16 ms.
  const lowDataRate = symbolMs > 16 ? 1 : 0;
  const preambleMs = (p.preambleSymbols + 4.25) * symbolMs;
  const numerator = 8 * bytes - 4 * p.spreadingFactor + 28 + 16 * (p.crc ? 1 : 0) - 20 * (p.explicitHeader ? 0 : 1);
  const payloadSymbols = 8 + Math.max(Math.ceil(numerator / (4 * (p.spreadingFactor - 2 * lowDataRate))) * (p.codingRate + 4), 0);
  return preambleMs + payloadSymbols * symbolMs;
}

/**
 * The profile of a configured radio. `codingRate` in configuration is the denominator
 * (5..8 for 4/5..4/8), as radios and datasheets write it.
 */
export function profileOf(radio: { spreadingFactor: number; bandwidthHz: number; codingRate: number; preambleSymbols?: number }): LoraProfile {
  return {
    spreadingFactor: radio.spreadingFactor,
    bandwidthHz: radio.bandwidthHz,
    codingRate: radio.codingRate - 4,
    preambleSymbols: radio.preambleSymbols ?? 8,
    explicitHeader: true,
    crc: true,
  };
}
