// Inclusion proofs of stored readings: built from the gateway's anchoring ledger (the
// epoch's frozen leaves), read from proof files, and checked against the root the
// contract holds.
import { readFileSync } from 'node:fs';
import { toHex } from '../codec/hex.ts';
import { IopError, errorMessage } from '../errors.ts';
import type { LedgerReader } from '../gateway/anchor-ledger.ts';
import { buildTree, proofFor, type EpochTree, type InclusionProof } from './merkle.ts';

export interface AnchoredProof extends InclusionProof {
  /** where the root went: null while the epoch's transaction is not in a block */
  anchored: { chainId: number | null; contract: string | null; transaction: string | null; block: number | null; state: string } | null;
}

/** `trees`: epochs' trees already built, kept by a caller proving many readings. */
export async function proofFromLedger(ledger: LedgerReader, device: string, seq: number, trees?: Map<number, EpochTree>): Promise<AnchoredProof> {
  const epoch = await ledger.epochOf(device, seq);
  if (epoch === undefined) {
    throw new IopError('INPUT', `seq ${seq} of ${device} is in no anchored epoch yet (not stored by this gateway, or its epoch has not ended)`);
  }
  const record = (await ledger.epoch(epoch))!;
  let tree = trees?.get(epoch);
  if (!tree) {
    tree = buildTree(await ledger.leavesOf(epoch));
    trees?.set(epoch, tree);
  }
  const leaf = (await ledger.leafOf(device, seq))!;
  const proof = proofFor(tree, epoch, leaf);
  if (proof.root !== record.root) throw new IopError('STORE', `epoch ${epoch}: its leaves give root ${proof.root}, the ledger says ${record.root}: the ledger is damaged`);
  const mined = record.state === 'mined' || record.state === 'final';
  return {
    ...proof,
    anchored: mined ? { chainId: record.chainId, contract: record.contract, transaction: record.tx, block: record.block, state: record.state } : null,
  };
}

/** Proofs from a file: one JSON proof, a JSON array of them, or JSON lines (as `proof --json` prints). */
export function readProofFile(path: string): Map<string, InclusionProof> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new IopError('INPUT', `cannot read proof file ${path}: ${errorMessage(err)}`);
  }
  const proofs = new Map<string, InclusionProof>();
  const trimmed = text.trim();
  let items: unknown[];
  try {
    items = trimmed.startsWith('[') ? JSON.parse(trimmed) as unknown[] : trimmed.split('\n').filter(Boolean).map((line) => JSON.parse(line));
  } catch (err) {
    throw new IopError('INPUT', `proof file ${path} is not JSON: ${errorMessage(err)}`);
  }
  items.forEach((item, index) => {
    const p = item as Partial<InclusionProof>;
    if (!p || typeof p.epoch !== 'number' || !p.leaf || typeof p.leaf.device !== 'string' || typeof p.leaf.seq !== 'number' || !Array.isArray(p.proof)) {
      throw new IopError('INPUT', `proof file ${path}, item ${index}: expected {epoch, root, leaf {hash, device, seq}, proof [...]}`);
    }
    proofs.set(proofKey(p.leaf.device, p.leaf.seq), p as InclusionProof);
  });
  return proofs;
}

export function proofKey(device: string, seq: number): string {
  return `${device}/${seq}`;
}

export function hashHex(hash: Uint8Array): string {
  return '0x' + toHex(hash);
}
