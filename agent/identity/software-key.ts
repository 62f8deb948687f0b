// The default key provider: an Ed25519 key in the state dir, PKCS#8 PEM, mode 0600,
// made once on first start. An existing key is never replaced: any problem with it is
// an error for a person to resolve.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ED25519, identityFromPublicKey, type DeviceIdentity } from '../codec/identity.ts';
import { IopError, errorMessage } from '../errors.ts';
import { assertWritable, ensureStateDir, writeFileOnce } from '../state-dir.ts';
import type { DeviceKey } from './device-key.ts';

export const KEY_FILE = 'device.key';
/** Public record of the identity; its presence means "this box already has a key". */
export const IDENTITY_FILE = 'identity.json';

export interface LoadedKey {
  key: DeviceKey;
  identity: DeviceIdentity;
  created: boolean;
}

export function loadDeviceKey(stateDir: string, options: { create: boolean }): LoadedKey {
  const keyPath = join(stateDir, KEY_FILE);
  const identityPath = join(stateDir, IDENTITY_FILE);
  if (existsSync(keyPath)) {
    const loaded = readKey(keyPath);
    if (!existsSync(identityPath)) recordIdentity(identityPath, loaded.identity);
    return { ...loaded, created: false };
  }
  if (existsSync(identityPath)) {
    throw new IopError('KEY_MISSING',
      `device key ${keyPath} is missing but ${identityPath} records an identity: restore the key from backup; ` +
      `to give this box a new identity on purpose, move the state dir away`, { keyPath });
  }
  if (!options.create) {
    throw new IopError('KEY_MISSING', `no device key in ${stateDir} (it is made by the first 'iop-agent run' or 'sample')`, { stateDir });
  }
  ensureStateDir(stateDir);
  assertWritable(stateDir);
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const wrote = writeFileOnce(keyPath, pem, 0o600);
  // Another process made the key first: use that one, never ours.
  const loaded = wrote ? fromKeyObject(privateKey) : readKey(keyPath);
  recordIdentity(identityPath, loaded.identity);
  return { ...loaded, created: wrote };
}

/** Best effort: a read-only state dir still lets a tech read the identity. */
function recordIdentity(path: string, identity: DeviceIdentity): void {
  try {
    writeFileOnce(path, JSON.stringify({ id: identity.id, publicKey: Buffer.from(identity.publicKey).toString('hex') }, null, 2) + '\n', 0o644);
  } catch {
    // the next start with a writable state dir records it
  }
}

function readKey(keyPath: string): Omit<LoadedKey, 'created'> {
  let mode: number;
  try {
    mode = statSync(keyPath).mode & 0o777;
  } catch (err) {
    throw new IopError('KEY_CORRUPT', `cannot stat device key ${keyPath}: ${errorMessage(err)}`, { keyPath }, { cause: err });
  }
  if (mode & 0o077) {
    throw new IopError('KEY_PERMISSIONS',
      `device key ${keyPath} is readable or writable by group or others (mode ${mode.toString(8).padStart(4, '0')}); ` +
      `it must be 0600: check who could have copied it, then 'chmod 600 ${keyPath}'`, { keyPath, mode });
  }
  let pem: string;
  try {
    pem = readFileSync(keyPath, 'utf8');
  } catch (err) {
    throw new IopError('KEY_CORRUPT', `cannot read device key ${keyPath}: ${errorMessage(err)}`, { keyPath }, { cause: err });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    // The parser's message can quote key bytes; say only what is wrong.
    throw new IopError('KEY_CORRUPT', `device key ${keyPath} is corrupt: not a PKCS#8 PEM private key`, { keyPath });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new IopError('KEY_CORRUPT', `device key ${keyPath} is a ${privateKey.asymmetricKeyType} key, expected ed25519`, { keyPath });
  }
  return fromKeyObject(privateKey);
}

function fromKeyObject(privateKey: KeyObject): Omit<LoadedKey, 'created'> {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const publicKey = new Uint8Array(Buffer.from(jwk.x as string, 'base64url'));
  const signSync = (message: Uint8Array): Uint8Array => cryptoSign(null, message, privateKey);
  const key: DeviceKey = {
    scheme: ED25519,
    publicKey,
    signSync,
    sign: async (message) => signSync(message),
  };
  return { key, identity: identityFromPublicKey(ED25519, publicKey) };
}
