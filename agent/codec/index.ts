// The consumer library: everything needed to verify readings and receipts, with no
// Node-only API (docs/protocol.md). Bundled as dist/iop-verify.mjs by npm run build.
export { ReadingVerifier, VerifyError, readingToJson, type VerifiedReading, type VerifierOptions, type ChainStatus, type ResolvedRecord } from './verify.ts';
export { VerifyingConsumer, type ConsumerResult } from './consumer.ts';
export { verifyReceipt, type Receipt, type VerifiedReceipt } from './receipt.ts';
export { splitCborSequence } from './cbor.ts';
export { identityFromId, identityFromPublicKey, ED25519 } from './identity.ts';
export { messageHash } from './chain.ts';
export { toHex, fromHex } from './hex.ts';
export { verifyStatus, type VerifiedStatus } from './status.ts';
