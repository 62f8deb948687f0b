// Mesh routers on the simulated radio in virtual time, at given positions, for the
// forwarding tests: LoRa timers, box 0 the uplink, what reaches it collected.
import { SimMedium } from '../../drivers/sim/medium.ts';
import { SeededRandom } from '../../drivers/sim/random.ts';
import { VirtualClock } from '../../drivers/sim/virtual-clock.ts';
import { MeshNode, type MeshMessage } from '../../mesh/node.ts';
import { LORA_TIMERS } from '../../mesh/simulation.ts';

export const SIM_MESH_KEY = new Uint8Array(32).fill(5);

/** Boxes at the given positions (metres, range 1000), box 0 the uplink. */
export function simBoxes(positions: [number, number][], options: { hopLimit?: number; seed?: number } = {}) {
  const clock = new VirtualClock();
  const random = new SeededRandom(options.seed ?? 11);
  const medium = new SimMedium({ clock, random, rangeM: 1000 });
  const links = positions.map(([x, y]) => medium.add(x, y));
  medium.connect();
  const nodes = links.map((link, i) => new MeshNode({
    id: new Uint8Array([1, 2, 3, 4, 5, i]), key: SIM_MESH_KEY, epoch: 1, clock, links: [link], timers: LORA_TIMERS,
    random: () => random.next(), ...(options.hopLimit ? { hopLimit: options.hopLimit } : {}),
  }));
  nodes[0]!.announce('uplink');
  const got: MeshMessage[] = [];
  nodes[0]!.onMessage((m) => got.push(m));
  nodes.forEach((n) => n.start());
  return { clock, medium, nodes, got };
}
