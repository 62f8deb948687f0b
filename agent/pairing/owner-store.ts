// The box's owner, kept in the state dir (owner.json, replaced atomically): who owns the
// box, the signed pairing that made them owner, and the signatures already used, so a
// pasted old signature is refused by name rather than as a mere mismatch.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { IopError, errorMessage } from '../errors.ts';
import { writeFileAtomic } from '../state-dir.ts';
import type { PairingMessage, TypedData } from './eip712.ts';

export const OWNER_FILE = 'owner.json';
const USED_KEPT = 32;

export interface OwnerRecord {
  owner: string;
  /** ISO time the box accepted the pairing (its own clock). */
  pairedAt: string;
  typedData: TypedData<PairingMessage>;
  signature: string;
}

export interface OwnerState {
  current: OwnerRecord | null;
  /** Signatures already used (lower-case hex), newest last. */
  usedSignatures: string[];
  /** Highest remote command counter executed (owner-signed commands). */
  commandCounter: number;
}

export class OwnerStore {
  readonly path: string;
  private state: OwnerState;

  constructor(stateDir: string) {
    this.path = join(stateDir, OWNER_FILE);
    this.state = this.read();
  }

  get current(): OwnerRecord | null {
    return this.state.current;
  }

  get commandCounter(): number {
    return this.state.commandCounter;
  }

  wasUsed(signature: string): boolean {
    return this.state.usedSignatures.includes(signature.toLowerCase());
  }

  setOwner(record: OwnerRecord): void {
    const used = [...this.state.usedSignatures, record.signature.toLowerCase()].slice(-USED_KEPT);
    // A new owner starts a new command counter sequence.
    this.save({ current: record, usedSignatures: used, commandCounter: 0 });
  }

  setCommandCounter(counter: number): void {
    this.save({ ...this.state, commandCounter: counter });
  }

  /** Factory reset: forgets the owner (used signatures stay refused). */
  reset(): void {
    this.save({ current: null, usedSignatures: this.state.usedSignatures, commandCounter: 0 });
  }

  private save(state: OwnerState): void {
    writeFileAtomic(this.path, JSON.stringify(state, null, 2) + '\n', 0o600);
    this.state = state;
  }

  private read(): OwnerState {
    if (!existsSync(this.path)) return { current: null, usedSignatures: [], commandCounter: 0 };
    try {
      const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<OwnerState>;
      return {
        current: parsed.current ?? null,
        usedSignatures: Array.isArray(parsed.usedSignatures) ? parsed.usedSignatures.filter((s) => typeof s === 'string') : [],
        commandCounter: typeof parsed.commandCounter === 'number' ? parsed.commandCounter : 0,
      };
    } catch (err) {
      throw new IopError('STATE_DIR', `${this.path} is unreadable (${errorMessage(err)}); move it away to unpair the box`, { path: this.path });
    }
  }

  /** For tests and `pair reset` of a corrupt file. */
  remove(): void {
    rmSync(this.path, { force: true });
    this.state = { current: null, usedSignatures: [], commandCounter: 0 };
  }
}
