// `verify --anchored`: each verified message's inclusion under the root the contract
// holds for its epoch. The proof comes from a proof file or the gateway's ledger (its state
// dir, or the PostgreSQL database its gateways share); the leaf is recomputed from the
// message itself, never taken from the proof.
import { IopError } from '../errors.ts';
import type { LedgerReader } from '../gateway/anchor-ledger.ts';
import { openLedgerReader } from '../gateway/ledger-reader.ts';
import type { ChainClient, Address } from './client.ts';
import { verifyInclusion, type EpochTree, type InclusionProof } from './merkle.ts';
import { hashHex, proofFromLedger, proofKey, readProofFile } from './proofs.ts';

export interface AnchoredResult { epoch: number; root: string }

export class AnchoredCheck {
  private readonly roots = new Map<number, string>();
  /** each epoch's tree built once, however many of its readings are checked */
  private readonly trees = new Map<number, EpochTree>();
  private readonly client: ChainClient;
  private readonly contract: Address;
  private readonly proofs: Map<string, InclusionProof> | undefined;
  private readonly ledger: LedgerReader | undefined;

  private constructor(options: { client: ChainClient; contract: Address; proofs: Map<string, InclusionProof> | undefined; ledger: LedgerReader | undefined }) {
    this.client = options.client;
    this.contract = options.contract;
    this.proofs = options.proofs;
    this.ledger = options.ledger;
  }

  static async open(options: { client: ChainClient; contract: Address; proofFile?: string | undefined; gatewayState?: string | undefined; gatewayDb?: string | undefined }): Promise<AnchoredCheck> {
    const { proofFile, gatewayState, gatewayDb } = options;
    if (!proofFile && !gatewayState && !gatewayDb) throw new IopError('USAGE', '--anchored needs --proof FILE, --gateway-state DIR or --gateway-db URL');
    if (gatewayState && gatewayDb) throw new IopError('USAGE', '--gateway-state and --gateway-db name two ledgers: give one');
    const proofs = proofFile ? readProofFile(proofFile) : undefined;
    const ledger = gatewayState || gatewayDb ? await openLedgerReader({ stateDir: gatewayState ?? '', db: gatewayDb }) : undefined;
    return new AnchoredCheck({ client: options.client, contract: options.contract, proofs, ledger });
  }

  /** The epoch and root proving the message, or an error saying why it is not proven. */
  async check(device: string, seq: number, hash: Uint8Array): Promise<AnchoredResult> {
    const proof = this.proofs?.get(proofKey(device, seq)) ?? (this.ledger ? await proofFromLedger(this.ledger, device, seq, this.trees) : undefined);
    if (!proof) throw new IopError('VERIFY', `no inclusion proof for seq ${seq} of ${device} in the proof file`);
    let root = this.roots.get(proof.epoch);
    if (root === undefined) {
      root = await this.client.rootOf(this.contract, proof.epoch);
      this.roots.set(proof.epoch, root);
    }
    if (/^0x0+$/.test(root)) throw new IopError('VERIFY', `epoch ${proof.epoch} has no root on chain (not anchored yet, or on another contract)`);
    const leaf = { hash: hashHex(hash), device, seq };
    if (!verifyInclusion(root, leaf, proof.proof)) throw new IopError('VERIFY', `not included under the root of epoch ${proof.epoch} on chain (${root})`);
    return { epoch: proof.epoch, root };
  }

  async close(): Promise<void> {
    await this.ledger?.close();
  }
}
