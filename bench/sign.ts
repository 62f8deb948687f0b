// Cost of one signed reading (sample, SenML encode, COSE sign, chain hash) against one
// bare signature by the same signing code, in one run; and node:crypto Ed25519 against
// @noble/curves, the two candidates for the box's signing code.
// Usage: npm run bench:sign [-- --json] [--quick]   (--quick: few short batches, for CI)
import { verify, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ed25519 } from '@noble/curves/ed25519.js';
import { GENESIS_PREV, type ChainLink } from '../agent/codec/chain.ts';
import { sigStructure, encodeProtectedHeader } from '../agent/codec/cose.ts';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import { signNext } from '../agent/signer.ts';
import { Sampler } from '../agent/sampler.ts';
import { silentLogger } from '../agent/log.ts';
import { createSimulatedSensor, SIMULATED_QUANTITIES } from '../sensors/simulated.ts';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import { Journal } from '../agent/store/journal.ts';
import { measure, measurePair, report } from './measure.ts';

const { values } = parseArgs({ options: { json: { type: 'boolean' }, quick: { type: 'boolean' } } });
/** Batches and their length: the quick run only shows that the bench works, its figures are rough. */
const timing = values.quick ? { batches: 3, minBatchMs: 30 } : {};
const state = mkdtempSync(join(tmpdir(), 'iop-bench-'));
try {
  const { key, identity } = loadDeviceKey(state, { create: true });
  const signSync = key.signSync!;
  const sampler = new Sampler({
    intervalMs: 1000,
    sensors: SIMULATED_QUANTITIES.map((quantity) => ({ sensor: createSimulatedSensor({ name: quantity, quantity }), intervalMs: 1000 })),
    log: silentLogger,
  });

  // A representative message, to size the bare signature's input like a real one.
  let now = Date.now();
  const pack = (await sampler.tick(now, { all: true }))!;
  const payload = encodeSenmlPack(pack);
  const header = { alg: -8, kid: identity.kid, seq: 123_456, prev: GENESIS_PREV };
  const toBeSigned = sigStructure(encodeProtectedHeader(header), payload);

  // The journal's own signing step (signNext), without the SQLite write, against one
  // bare signature of a message of the same size by the same key and code.
  let head: ChainLink | undefined;
  const [bare, perReading] = await measurePair(
    ['bare signature (node:crypto Ed25519, box key)', () => signSync(toBeSigned)],
    ['one reading: sample + SenML + COSE sign + chain', async () => {
      now += 1000;
      const tick = (await sampler.tick(now, { all: true }))!;
      const signed = await signNext(key, identity, head, encodeSenmlPack(tick));
      head = { seq: signed.seq, hash: signed.hash };
    }],
    timing,
  );

  const journal = Journal.open(state, identity, key);
  const stored = await measure('one reading signed and stored (SQLite WAL, fsync)', async () => {
    now += 1000;
    const tick = (await sampler.tick(now, { all: true }))!;
    await journal.append(encodeSenmlPack(tick));
  }, values.quick ? timing : { batches: 5, minBatchMs: 500 });
  journal.close();

  // The other candidate: @noble/curves, pure JS (runs in a browser too).
  const seed = ed25519.utils.randomSecretKey();
  const noblePublic = ed25519.getPublicKey(seed);
  const nobleSign = await measure('@noble/curves ed25519 sign', () => ed25519.sign(toBeSigned, seed), timing);
  const signature = signSync(toBeSigned);
  const nodePublic = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(identity.publicKey).toString('base64url') }, format: 'jwk' });
  const nodeVerify = await measure('node:crypto Ed25519 verify', () => verify(null, toBeSigned, nodePublic, signature), timing);
  const nobleSignature = ed25519.sign(toBeSigned, seed);
  const nobleVerify = await measure('@noble/curves ed25519 verify (consumer library)', () => ed25519.verify(nobleSignature, toBeSigned, noblePublic, { zip215: false }), timing);

  const ratio = perReading.nsPerOp / bare.nsPerOp;
  if (values.json) {
    console.log(JSON.stringify({ bareSignUs: bare.nsPerOp / 1e3, perReadingUs: perReading.nsPerOp / 1e3, ratio, storedUs: stored.nsPerOp / 1e3, nodeSignPerS: bare.opsPerSecond, nobleSignPerS: nobleSign.opsPerSecond, nodeVerifyPerS: nodeVerify.opsPerSecond, nobleVerifyPerS: nobleVerify.opsPerSecond }));
  } else {
    console.log(`message: ${payload.length} B payload, ${toBeSigned.length} B signed, ${pack.records.length} records\n`);
    console.log(report(bare));
    console.log(report(perReading, bare));
    console.log(report(stored, bare));
    console.log();
    console.log(report(nobleSign, bare));
    console.log(report(nodeVerify));
    console.log(report(nobleVerify, nodeVerify));
    console.log(`\nper reading / bare signature: ${ratio.toFixed(2)}x (goal <= 1.30x) ${ratio <= 1.3 ? 'MET' : 'NOT MET'}`);
    console.log(`signing: node:crypto ${Math.round(bare.opsPerSecond)}/s vs @noble/curves ${Math.round(nobleSign.opsPerSecond)}/s (${(bare.opsPerSecond / nobleSign.opsPerSecond).toFixed(1)}x)`);
  }
} finally {
  rmSync(state, { recursive: true, force: true });
}
