// Distances and the free-space bound on received power: what lets the gateway refuse a
// witness whose signal is stronger than physics allows at the claimed distance (the
// check Helium's proof-of-coverage verifier makes).

export interface Location {
  lat: number;
  lon: number;
}

const EARTH_RADIUS_M = 6_371_000;
/** speed of light in air, m/s */
const C = 2.998e8;

/** Great-circle distance in metres (haversine). */
export function distanceM(a: Location, b: Location): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Free-space path loss in dB: 20·log10(4π·d·f / c), d at least 1 m. */
export function freeSpacePathLossDb(distanceMetres: number, frequencyHz: number): number {
  return 20 * Math.log10((4 * Math.PI * Math.max(1, distanceMetres) * frequencyHz) / C);
}

/** The strongest RSSI a receiver can see from a transmitter of this EIRP at this distance, in free space. */
export function maxRssiDbm(eirpDbm: number, distanceMetres: number, frequencyHz: number, rxGainDbi = 0): number {
  return eirpDbm + rxGainDbi - freeSpacePathLossDb(distanceMetres, frequencyHz);
}

/** A point `dx`, `dy` metres east and north of `origin` (the simulator's flat plane on the globe). */
export function offsetLocation(origin: Location, dx: number, dy: number): Location {
  const lat = origin.lat + (dy / EARTH_RADIUS_M) * (180 / Math.PI);
  const lon = origin.lon + (dx / (EARTH_RADIUS_M * Math.cos((origin.lat * Math.PI) / 180))) * (180 / Math.PI);
  return { lat, lon };
}
