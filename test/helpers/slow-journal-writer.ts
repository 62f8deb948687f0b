// A child process for test/journal-crash.test.ts: appends readings through a key provider
// that takes 20 ms per signature (like a secure element) while receipts remove ranges of
// stored readings every few milliseconds, until it is killed. It prints what it did:
// "S seq hash" after each append, and "R first last" before each removal.
import { hash } from 'node:crypto';
import { encodeSenmlPack } from '../../agent/codec/senml.ts';
import type { DeviceKey } from '../../agent/identity/device-key.ts';
import { loadDeviceKey } from '../../agent/identity/software-key.ts';
import { Journal } from '../../agent/store/journal.ts';

const SIGN_MS = 20;
const stateDir = process.argv[2]!;
const { key, identity } = loadDeviceKey(stateDir, { create: true });
const slowKey: DeviceKey = {
  scheme: key.scheme,
  publicKey: key.publicKey,
  async sign(message) {
    await new Promise((resolve) => setTimeout(resolve, SIGN_MS));
    return key.sign(message);
  },
};
const journal = Journal.open(stateDir, identity, slowKey);

// Receipts: every 3 ms, free a random stretch of what is stored, holes and all.
setInterval(() => {
  const oldest = journal.oldest();
  const head = journal.head();
  if (oldest === undefined || !head || head.seq - oldest < 4) return;
  const first = oldest + Math.floor(Math.random() * (head.seq - oldest - 2));
  const last = Math.min(head.seq - 2, first + Math.floor(Math.random() * 4));
  process.stdout.write(`R ${first} ${last}\n`);
  journal.removeRanges([{ first, last }]);
}, 3);

for (let i = 0; ; i++) {
  const stored = await journal.append(encodeSenmlPack({ time: 1_800_000_000 + i, records: [{ n: 'x', v: i }] }));
  process.stdout.write(`S ${stored.seq} ${hash('sha256', stored.bytes)}\n`);
}
