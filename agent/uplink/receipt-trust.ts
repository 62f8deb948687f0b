// Which gateways' receipts may delete readings from this box. Configured keys win;
// with none configured (allowed only without the mesh) the first gateway whose valid
// receipt arrives is pinned (trust on first use) in the state dir and logged, and only
// it counts after that. A pin file that cannot be read stops the agent: trusting the
// next signer again would hand the queue to whoever answers first.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../codec/hex.ts';
import { verifyReceipt, type VerifiedReceipt } from '../codec/receipt.ts';
import { IopError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { writeFileAtomic } from '../state-dir.ts';

export const PINNED_GATEWAYS_FILE = 'gateways.json';

const HEX_KEY = /^[0-9a-f]{64}$/;

/** Why a receipt was refused: each is counted on its own. */
export type ReceiptRefusal = 'malformed' | 'badSignature' | 'otherDevice' | 'untrusted';

export type ReceiptCheck = { ok: true; receipt: VerifiedReceipt } | { ok: false; why: ReceiptRefusal; reason: string };

export class ReceiptTrust {
  private readonly keys: Set<string>;
  private readonly pinFile: string | undefined;
  private readonly device: string;
  private readonly log: Logger;
  /** receipts refused, by reason (an untrusted one is a gateway, or a box, this box does not trust) */
  readonly refused: Record<ReceiptRefusal, number> = { malformed: 0, badSignature: 0, otherDevice: 0, untrusted: 0 };

  /** Throws IopError CONFIG (exit 2) when the pinned-gateway file exists but cannot be used. */
  constructor(options: { device: string; gatewayKeys: string[]; stateDir: string; log: Logger }) {
    this.device = options.device;
    this.log = options.log;
    this.keys = new Set(options.gatewayKeys.map((k) => k.toLowerCase()));
    if (this.keys.size === 0) {
      this.pinFile = join(options.stateDir, PINNED_GATEWAYS_FILE);
      for (const key of readPinned(this.pinFile)) this.keys.add(key);
    }
  }

  check(bytes: Uint8Array): ReceiptCheck {
    let receipt: VerifiedReceipt;
    try {
      receipt = verifyReceipt(bytes);
    } catch (err) {
      return this.refuse('malformed', `malformed receipt: ${errorMessage(err)}`);
    }
    if (!receipt.valid) return this.refuse('badSignature', `receipt signature of gateway ${receipt.gateway.id} does not verify`);
    if (receipt.device !== this.device) return this.refuse('otherDevice', `receipt is for device ${receipt.device}, not this box`);
    const key = toHex(receipt.gateway.publicKey);
    if (!this.keys.has(key)) {
      if (!this.pinFile || this.keys.size > 0) return this.refuse('untrusted', `receipt from gateway ${key} which is not trusted (uplink.gatewayKeys): ignored`);
      this.keys.add(key);
      try {
        writeFileAtomic(this.pinFile, JSON.stringify({ publicKeys: [key] }, null, 2) + '\n', 0o644);
      } catch (err) {
        this.log.warn(`cannot record the pinned gateway in ${this.pinFile}: ${errorMessage(err)}`);
      }
      this.log.warn(`trusting gateway ${key} from its first receipt (no uplink.gatewayKeys configured); pinned in ${this.pinFile}`);
    }
    return { ok: true, receipt };
  }

  private refuse(why: ReceiptRefusal, reason: string): ReceiptCheck {
    this.refused[why]++;
    return { ok: false, why, reason };
  }
}

/** The pinned keys; none if the file does not exist. Anything else wrong with it is an error. */
function readPinned(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw corrupt(path, errorMessage(err));
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw corrupt(path, `not JSON (${errorMessage(err)})`);
  }
  const keys = (value as { publicKeys?: unknown } | null)?.publicKeys;
  if (!Array.isArray(keys) || keys.length === 0) throw corrupt(path, 'expected {"publicKeys": [hex, ...]} with at least one key');
  const bad = keys.findIndex((k) => typeof k !== 'string' || !HEX_KEY.test(k.toLowerCase()));
  if (bad >= 0) throw corrupt(path, `publicKeys[${bad}] is not 64 hex digits`);
  return (keys as string[]).map((k) => k.toLowerCase());
}

function corrupt(path: string, what: string): IopError {
  return new IopError('CONFIG', `pinned gateway file ${path} is unusable: ${what}. No receipt is accepted without it: ` +
    'list the gateway in uplink.gatewayKeys, or repair the file (deleting it trusts the next gateway seen)', { path });
}
