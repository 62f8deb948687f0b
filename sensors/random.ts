// Seeds for simulated sensors: the same series for the same box and sensor name.
export { SeededRandom } from '../drivers/sim/random.ts';

export function seedFromText(text: string): number {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return hash >>> 0;
}
