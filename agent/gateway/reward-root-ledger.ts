// The rewards roots' anchoring ledger: the same states and the same anchorer as the
// readings' roots (anchor-ledger.ts, chain/anchorer.ts), so each rewards epoch's root of
// cumulative amounts goes on the claim contract (contracts/IopRewards.sol) in one
// transaction, retried, never twice, across restarts. Its own database in the rewards
// folder: the readings' ledger binds another contract.
//
// An epoch is "built" as soon as the contribution ledger has written its table. Tables
// without a root (nobody earned anything yet) and tables whose root equals the last one
// built (no owner's cumulative amount moved) get no transaction: claims always check the
// latest root, which still holds every amount.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteAnchorLedger, type EpochRecord } from './anchor-ledger.ts';
import { REWARDS_DIR, readTable } from './contribution.ts';

export const REWARD_ROOTS_FILE = join(REWARDS_DIR, 'roots.sqlite');

export class RewardRootLedger extends SqliteAnchorLedger {
  private readonly stateDir: string;

  constructor(stateDir: string, options: { epochS: number }) {
    mkdirSync(join(stateDir, REWARDS_DIR), { recursive: true });
    super(stateDir, { epochS: options.epochS, file: REWARD_ROOTS_FILE });
    this.stateDir = stateDir;
  }

  /** Every table written since the last call, oldest first; returns those that got a record. */
  override buildDue(): EpochRecord[] {
    const dir = join(this.stateDir, REWARDS_DIR);
    if (!existsSync(dir)) return [];
    const next = Number(this.meta('next_epoch') ?? 0);
    const epochs = readdirSync(dir).map((f) => /^(\d+)\.json$/.exec(f)?.[1]).filter((e): e is string => e !== undefined).map(Number)
      .filter((e) => e >= next).sort((a, b) => a - b);
    const built: EpochRecord[] = [];
    for (const epoch of epochs) {
      const table = readTable(this.stateDir, epoch);
      const record = this.transaction(() => {
        this.setMeta('next_epoch', String(epoch + 1));
        if (!table.root || table.root === this.meta('last_root')) return undefined;
        this.setMeta('last_root', table.root);
        this.s.insertEpoch.run(epoch, table.root, table.owners.length);
        return this.epoch(epoch)!;
      });
      if (record) built.push(record);
    }
    return built;
  }
}
