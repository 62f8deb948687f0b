// Where the gateway keeps pairings (device -> owner, the nonces used): a JSON file in the
// state dir (the default, beside gateway.db), or the PostgreSQL database gateways share
// (store-postgres.ts). Every decision on a claim runs on the device's current entry,
// alone: two gateways taking the same claim at once record it once.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IopError, errorMessage } from '../errors.ts';
import { writeFileAtomic } from '../state-dir.ts';

export const PAIRINGS_FILE = 'pairings.json';

export interface PairingEntry { device: string; owner: string; pairedAt: string; nonce: string; usedNonces: string[] }

/** What a decision on a claim returns: the entry to store (if any) and its own result. */
export interface PairingDecision<T> { store?: PairingEntry; result: T }

export interface PairingStore {
  all(): Promise<PairingEntry[]>;
  /** Decides on the device's current entry with no other decision on it meanwhile; stores what the decision says. */
  update<T>(device: string, decide: (current: PairingEntry | undefined) => PairingDecision<T>): Promise<T>;
}

export class FilePairingStore implements PairingStore {
  private readonly entries = new Map<string, PairingEntry>();
  private readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, PAIRINGS_FILE);
    if (!existsSync(this.path)) return;
    let entries: PairingEntry[];
    try {
      entries = JSON.parse(readFileSync(this.path, 'utf8')) as PairingEntry[];
    } catch (err) {
      throw new IopError('STATE_DIR', `${this.path} is unreadable (${errorMessage(err)}): restore it from a backup; boxes send their claims again only when paired again`);
    }
    for (const entry of entries) this.entries.set(entry.device, entry);
  }

  async all(): Promise<PairingEntry[]> {
    return [...this.entries.values()];
  }

  async update<T>(device: string, decide: (current: PairingEntry | undefined) => PairingDecision<T>): Promise<T> {
    // Synchronous from read to write: nothing else in this process decides in between.
    const decision = decide(this.entries.get(device));
    if (decision.store) {
      this.entries.set(device, decision.store);
      writeFileAtomic(this.path, JSON.stringify([...this.entries.values()], null, 2) + '\n', 0o644);
    }
    return decision.result;
  }
}
