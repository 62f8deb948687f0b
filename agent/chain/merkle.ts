// The epoch tree: an OpenZeppelin StandardMerkleTree over the readings a gateway stored in
// one epoch. Leaf = keccak256(keccak256(abi.encode(bytes32 messageHash, string device,
// uint64 seq))), pairs sorted, so Solidity's MerkleProof and any tool reading the
// standard-v1 format check a proof (docs/chain.md).
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { toHex } from '../codec/hex.ts';

export const LEAF_ENCODING = ['bytes32', 'string', 'uint64'];

export interface AnchorLeaf {
  /** SHA-256 of the complete COSE message */
  hash: Uint8Array;
  device: string;
  seq: number;
}

export type LeafValue = [hash: string, device: string, seq: string];
export type EpochTree = StandardMerkleTree<LeafValue>;

export function leafValue(leaf: AnchorLeaf): LeafValue {
  return ['0x' + toHex(leaf.hash), leaf.device, String(leaf.seq)];
}

/** The tree of one epoch (at least one leaf). Leaves are sorted by hash: the root does not depend on their order. */
export function buildTree(leaves: readonly AnchorLeaf[]): StandardMerkleTree<LeafValue> {
  if (leaves.length === 0) throw new RangeError('an epoch tree needs at least one leaf');
  return StandardMerkleTree.of(leaves.map(leafValue), LEAF_ENCODING, { sortLeaves: true });
}

export interface InclusionProof {
  epoch: number;
  root: string;
  leaf: { hash: string; device: string; seq: number };
  proof: string[];
}

export function proofFor(tree: StandardMerkleTree<LeafValue>, epoch: number, leaf: AnchorLeaf): InclusionProof {
  const value = leafValue(leaf);
  return { epoch, root: tree.root, leaf: { hash: value[0], device: leaf.device, seq: leaf.seq }, proof: tree.getProof(value) };
}

/** True when the proof leads from the leaf to `root`. */
export function verifyInclusion(root: string, leaf: InclusionProof['leaf'], proof: readonly string[]): boolean {
  try {
    return StandardMerkleTree.verify(root, LEAF_ENCODING, [leaf.hash, leaf.device, String(leaf.seq)], [...proof]);
  } catch {
    return false;
  }
}
