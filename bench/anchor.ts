// Anchoring cost: the gateway's real path (readings stored through the gateway store, the
// epoch built by the anchoring ledger, sent by the anchorer) on a local EDR chain, at
// 1,000 and 100,000 readings in one epoch. Prints transactions per epoch, gas per epoch and
// per reading, and the gas of checking one reading on chain (`proves`, depth log2 N).
// Usage: npm run bench:anchor [-- --quick]   (--quick: 1,000 and 10,000 readings, for CI)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { privateKeyToAccount } from 'viem/accounts';
import type { Hex } from 'viem';
import { Anchorer } from '../agent/chain/anchorer.ts';
import { ChainClient } from '../agent/chain/client.ts';
import { proofFromLedger } from '../agent/chain/proofs.ts';
import { GENESIS_PREV } from '../agent/codec/chain.ts';
import { SqliteAnchorLedger } from '../agent/gateway/anchor-ledger.ts';
import type { IncomingReading } from '../agent/gateway/store.ts';
import { SqliteGatewayStore } from '../agent/gateway/store-sqlite.ts';
import { silentLogger } from '../agent/log.ts';
import { DEV_KEYS, evmMissing, startEvm } from '../harness/evm.ts';
import { randomBytes } from 'node:crypto';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const sizes = values.quick ? [1000, 10_000] : [1000, 100_000];
const EPOCH_S = 60;
const DEVICES = 20;

const missing = await evmMissing();
if (missing) {
  console.log(`skipped: ${missing}`);
  process.exit(0);
}
const evm = await startEvm();
const account = privateKeyToAccount(DEV_KEYS[0]);
const client = await ChainClient.connect(evm.url, account);
const { contract } = await client.deploy();
const device = (i: number) => `a${'bcdefghijklmnopqrstu'[i % DEVICES]}${'2'.repeat(50)}`;
const rows: string[] = [];
let allOne = true;
try {
  for (const [index, count] of sizes.entries()) {
    const dir = mkdtempSync(join(tmpdir(), 'iop-bench-anchor-'));
    try {
      // An epoch in the past, one per size, so each anchors its own epoch number.
      const epoch = Math.floor(Date.now() / 1000 / EPOCH_S) - 10 * (index + 1);
      const start = epoch * EPOCH_S * 1000;
      const store = new SqliteGatewayStore(dir, { gapTimeoutMs: 60_000 });
      const ledger = new SqliteAnchorLedger(dir, { epochS: EPOCH_S });
      ledger.buildDue(start, 0); // anchoring turned on in that epoch
      const prev = new Map<string, Uint8Array>();
      let batch: IncomingReading[] = [];
      for (let i = 0; i < count; i++) {
        const id = device(i);
        const hash = randomBytes(32);
        batch.push({ device: id, seq: Math.floor(i / DEVICES), hash, prev: prev.get(id) ?? GENESIS_PREV, message: hash, receivedMs: start + Math.floor((i / count) * EPOCH_S * 1000) });
        prev.set(id, hash);
        if (batch.length === 5000) { await store.acceptAll(batch); batch = []; }
      }
      if (batch.length) await store.acceptAll(batch);
      await store.close();
      const before = await client.nonce('latest');
      const anchorer = new Anchorer({ ledger, rpc: evm.url, account, contract, confirmations: 1, log: silentLogger, now: () => start + (EPOCH_S + 5) * 1000 });
      anchorer.start();
      const reader = new SqliteAnchorLedger(dir, {});
      const deadline = Date.now() + 120_000;
      while (!['mined', 'final'].includes(reader.epoch(epoch)?.state ?? '')) {
        if (Date.now() > deadline) throw new Error(`epoch of ${count} readings not anchored in 120 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await anchorer.stop();
      const record = reader.epoch(epoch)!;
      const receipt = await client.waitForReceipt(record.tx as Hex);
      const transactions = (await client.nonce('latest')) - before;
      allOne &&= transactions === 1 && record.leaves === count;
      const proof = await proofFromLedger(reader, device(7), 3);
      const provesGas = await client.public.estimateContractGas({
        address: contract, abi: (await import('../agent/chain/artifact.ts')).REGISTRY_ABI, functionName: 'proves',
        args: [BigInt(epoch), proof.leaf.hash, proof.leaf.device, BigInt(proof.leaf.seq), proof.proof], account: account.address,
      });
      reader.close();
      rows.push(`${String(count).padStart(9)} readings  ${String(transactions).padStart(2)} tx/epoch  gas/epoch ${String(receipt.gasUsed).padStart(7)}  ` +
        `gas/reading ${(Number(receipt.gasUsed) / count).toFixed(count >= 10_000 ? 3 : 2).padStart(8)}  proof ${String(proof.proof.length).padStart(2)} hashes, proves() ${provesGas} gas`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  await evm.stop();
}
console.log('anchoring one epoch (gateway store -> ledger -> anchorer -> EDR chain)');
for (const row of rows) console.log(row);
console.log(`goal: one transaction per epoch per gateway whatever the number of readings: ${allOne ? 'MET' : 'NOT MET'}`);
