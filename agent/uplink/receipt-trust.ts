// Which gateways' receipts may delete readings from this box. Configured keys win;
// with none configured the first gateway whose valid receipt arrives is pinned
// (trust on first use) in the state dir and logged, and only it counts after that.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../codec/hex.ts';
import { verifyReceipt, type VerifiedReceipt } from '../codec/receipt.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { writeFileAtomic } from '../state-dir.ts';

export const PINNED_GATEWAYS_FILE = 'gateways.json';

export type ReceiptCheck = { ok: true; receipt: VerifiedReceipt } | { ok: false; reason: string };

export class ReceiptTrust {
  private readonly keys: Set<string>;
  private readonly pinFile: string | undefined;
  private readonly device: string;
  private readonly log: Logger;

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
      return { ok: false, reason: `malformed receipt: ${errorMessage(err)}` };
    }
    if (!receipt.valid) return { ok: false, reason: `receipt signature of gateway ${receipt.gateway.id} does not verify` };
    if (receipt.device !== this.device) return { ok: false, reason: `receipt is for device ${receipt.device}, not this box` };
    const key = toHex(receipt.gateway.publicKey);
    if (!this.keys.has(key)) {
      if (!this.pinFile || this.keys.size > 0) return { ok: false, reason: `receipt from gateway ${key} which is not trusted (uplink.gatewayKeys)` };
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
}

function readPinned(path: string): string[] {
  if (!existsSync(path)) return [];
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as { publicKeys?: unknown };
    return Array.isArray(value.publicKeys) ? value.publicKeys.filter((k): k is string => typeof k === 'string') : [];
  } catch {
    return [];
  }
}
