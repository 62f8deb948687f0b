// The gateway's chain key: a secp256k1 private key in a file of its own (0x and 64 hex
// digits, mode 0600), like the device key. Only the address is ever printed or logged.
import { readFileSync, statSync } from 'node:fs';
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import { IopError, errorMessage } from '../errors.ts';
import { writeFileOnce } from '../state-dir.ts';

export function loadChainKey(path: string): PrivateKeyAccount {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch (err) {
    throw new IopError('CHAIN', `cannot read chain key ${path}: ${errorMessage(err)} (make one with 'iop-agent chain key --key ${path}')`, { path });
  }
  if (mode & 0o077) {
    throw new IopError('KEY_PERMISSIONS', `chain key ${path} is readable or writable by group or others (mode ${mode.toString(8).padStart(4, '0')}); ` +
      `it must be 0600: check who could have copied it, then 'chmod 600 ${path}'`, { path, mode });
  }
  const text = readFileSync(path, 'utf8').trim();
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(text)) {
    // Never quote the content: it is (or was meant to be) a private key.
    throw new IopError('KEY_CORRUPT', `chain key ${path} is not a secp256k1 private key (expected 0x and 64 hex digits on one line)`, { path });
  }
  try {
    return privateKeyToAccount((text.startsWith('0x') ? text : `0x${text}`) as `0x${string}`);
  } catch {
    throw new IopError('KEY_CORRUPT', `chain key ${path} is not a valid secp256k1 private key`, { path });
  }
}

/** Makes a new chain key file; an existing one is never replaced. */
export function createChainKey(path: string): PrivateKeyAccount {
  const key = generatePrivateKey();
  if (!writeFileOnce(path, key + '\n', 0o600)) throw new IopError('CHAIN', `${path} exists already: not replaced`, { path });
  return privateKeyToAccount(key);
}
