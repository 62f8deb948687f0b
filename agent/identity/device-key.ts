// The key-provider interface. Callers sign through it and never see private key
// material, so a secure element (P-256, ATECC608) or a secp256k1 key can be added as
// another provider without touching them.
import type { SignatureScheme } from '../codec/identity.ts';

export interface DeviceKey {
  readonly scheme: SignatureScheme;
  /** Raw public key in the scheme's encoding (32 bytes for Ed25519). */
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** Same as sign, for providers that can sign without I/O (a software key). */
  signSync?(message: Uint8Array): Uint8Array;
}
