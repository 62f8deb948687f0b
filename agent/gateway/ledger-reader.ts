// Where proofs are read from: the anchoring ledger of a gateway's state dir (SQLite) or of
// the PostgreSQL database several gateways share (`--db postgres://...`).
import { IopError } from '../errors.ts';
import type { LedgerReader } from './anchor-ledger.ts';
import { redact } from './store.ts';

export const POSTGRES_URL = /^postgres(ql)?:\/\//;

/** Checks a `--db` flag: a postgres:// URL or nothing. */
export function dbOption(db: string | undefined, flag = 'db'): string | undefined {
  if (db !== undefined && !POSTGRES_URL.test(db)) throw new IopError('USAGE', `--${flag} takes a postgres:// URL, not ${JSON.stringify(redact(db))}`);
  return db;
}

/** The ledger to read proofs from: the database when given, else the state dir's. */
export async function openLedgerReader(source: { stateDir: string; db?: string | undefined }): Promise<LedgerReader> {
  if (source.db !== undefined) {
    const { openPostgresLedgerReader } = await import('./anchor-ledger-postgres.ts');
    return openPostgresLedgerReader(source.db);
  }
  const { SqliteAnchorLedger } = await import('./anchor-ledger.ts');
  return new SqliteAnchorLedger(source.stateDir, {});
}
