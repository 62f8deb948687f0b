// Owners' rewards for one epoch (docs/rewards.md, section 7): pool × Σ(stake ×
// performance of their devices) / the same over all owners, or stake alone for
// comparison; amounts in the token's smallest unit as bigint, rounded down (the dust
// stays in the pool). Cumulative amounts per owner go into an OpenZeppelin standard
// Merkle tree (leaves ["address", "uint256"]) so one claim catches up every missed epoch.
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { readFile } from 'node:fs/promises';

export interface DeviceScoreRow {
  device: string;
  owner: string | undefined;
  performance: number;
}

/** Where stakes come from: the chain later (contracts/), a JSON file for now. */
export interface StakeProvider {
  stakes(epoch: number): Promise<Map<string, bigint>>;
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** `{"0x…": "1000", …}`: each owner's stake, decimal, in the token's smallest unit. */
export class JsonStakeFile implements StakeProvider {
  private readonly path: string;
  constructor(path: string) {
    this.path = path;
  }
  async stakes(): Promise<Map<string, bigint>> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(this.path, 'utf8'));
    } catch (err) {
      throw new Error(`stakes file ${this.path}: ${(err as Error).message}`);
    }
    return parseStakes(parsed, `stakes file ${this.path}`);
  }
}

export function parseStakes(value: unknown, where: string): Map<string, bigint> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: expected an object of owner address to stake`);
  const out = new Map<string, bigint>();
  for (const [owner, stake] of Object.entries(value)) {
    if (!ADDRESS.test(owner)) throw new Error(`${where}: '${owner}' is not an address (0x and 40 hex digits)`);
    if (typeof stake !== 'string' || !/^\d+$/.test(stake)) throw new Error(`${where}: stake of ${owner} must be a decimal string of a whole number`);
    out.set(owner.toLowerCase(), BigInt(stake));
  }
  return out;
}

export interface OwnerReward {
  owner: string;
  stake: bigint;
  devices: number;
  /** mean performance of the owner's devices, ppm (0 without devices) */
  performancePpm: number;
  weight: bigint;
  reward: bigint;
}

const PPM = 1_000_000;

/** Every owner with a stake gets a row (zero without working devices). */
export function ownerRewards(pool: bigint, stakes: ReadonlyMap<string, bigint>, devices: readonly DeviceScoreRow[], byStakeOnly = false): OwnerReward[] {
  const perOwner = new Map<string, { n: number; ppm: number }>();
  for (const d of devices) {
    if (!d.owner) continue;
    const owner = d.owner.toLowerCase();
    const o = perOwner.get(owner) ?? { n: 0, ppm: 0 };
    o.n++;
    o.ppm += Math.round(Math.min(1, Math.max(0, d.performance)) * PPM);
    perOwner.set(owner, o);
  }
  const rows: OwnerReward[] = [...stakes].map(([owner, stake]) => {
    const o = perOwner.get(owner) ?? { n: 0, ppm: 0 };
    const performancePpm = o.n ? Math.round(o.ppm / o.n) : 0;
    // stake × the mean of the devices' performance = Σ over devices of (stake / n) × performance
    const weight = byStakeOnly ? stake * BigInt(PPM) : o.n ? (stake * BigInt(o.ppm)) / BigInt(o.n) : 0n;
    return { owner, stake, devices: o.n, performancePpm, weight, reward: 0n };
  });
  const total = rows.reduce((s, r) => s + r.weight, 0n);
  if (total > 0n) for (const r of rows) r.reward = (pool * r.weight) / total;
  return rows.sort((a, b) => (a.owner < b.owner ? -1 : 1));
}

/** Cumulative amounts after this epoch: the previous ones plus this epoch's rewards. */
export function cumulate(previous: ReadonlyMap<string, bigint>, rewards: readonly { owner: string; reward: bigint }[]): Map<string, bigint> {
  const out = new Map(previous);
  for (const r of rewards) out.set(r.owner, (out.get(r.owner) ?? 0n) + r.reward);
  return out;
}

export interface ClaimTree {
  root: string;
  proofs: Map<string, string[]>;
  /** the tree in OpenZeppelin's dump format (StandardMerkleTree.load reads it) */
  dump: unknown;
}

/** The OpenZeppelin standard tree of [owner, cumulative amount]; undefined when nobody has anything. */
export function claimTree(cumulative: ReadonlyMap<string, bigint>): ClaimTree | undefined {
  const entries = [...cumulative].filter(([, amount]) => amount > 0n).sort(([a], [b]) => (a < b ? -1 : 1)).map(([owner, amount]) => [owner, amount.toString()]);
  if (entries.length === 0) return undefined;
  const tree = StandardMerkleTree.of(entries, ['address', 'uint256']);
  const proofs = new Map<string, string[]>();
  for (const [i, [owner]] of tree.entries()) proofs.set(owner as string, tree.getProof(i));
  return { root: tree.root, proofs, dump: tree.dump() };
}

export function verifyClaim(root: string, owner: string, cumulative: bigint, proof: string[]): boolean {
  return StandardMerkleTree.verify(root, ['address', 'uint256'], [owner, cumulative.toString()], proof);
}
