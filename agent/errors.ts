// One error type for the agent: a code a caller can branch on, the process exit code
// it maps to, and the context (file, field, device) a person needs to fix it.
export type ErrorCode =
  | 'USAGE'
  | 'CONFIG'
  | 'STATE_DIR'
  | 'KEY_PERMISSIONS'
  | 'KEY_CORRUPT'
  | 'KEY_MISSING'
  | 'KEY_MISMATCH'
  | 'STORE'
  | 'INPUT'
  | 'VERIFY'
  | 'CHAIN'
  | 'AGENT';

/** 2 means the caller asked wrongly (usage or configuration); 1 means it failed. */
const EXIT_CODES: Partial<Record<ErrorCode, number>> = { USAGE: 2, CONFIG: 2 };

/** Marks an IopError whichever copy of this module made it (the executable's tools bundle has its own). */
const IOP_ERROR = Symbol.for('iop-agent.IopError');

export class IopError extends Error {
  override name = 'IopError';
  readonly [IOP_ERROR] = true;

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[IOP_ERROR] === true;
  }

  readonly code: ErrorCode;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.context = context;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code] ?? 1;
  }
}

export function isIopError(err: unknown, code?: ErrorCode): err is IopError {
  return err instanceof IopError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
