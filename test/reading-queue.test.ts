// One behaviour of the reading queue, run against the box's Journal (SQLite on disk) and
// the simulator's MemoryQueue: the simulated boxes run the shipped forwarder, and what it
// sees of its queue must not differ from what a box's journal shows it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { messageHash } from '../agent/codec/chain.ts';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import { Journal } from '../agent/store/journal.ts';
import { MemoryQueue, type ReadingQueue } from '../agent/store/reading-queue.ts';
import { tempDir } from './helpers/cli.ts';

const dir = tempDir();
test.after(() => dir.remove());

const payload = (i: number) => encodeSenmlPack({ time: 1_800_000_000 + i, records: [{ n: 'x', v: i }] });

/** A journal holding `count` signed messages, and a memory queue given the same ones. */
async function both(name: string, count: number, maxMessages?: number): Promise<{ journal: Journal; memory: MemoryQueue }> {
  const state = join(dir.path, name);
  const { key, identity } = loadDeviceKey(state, { create: true });
  const journal = Journal.open(state, identity, key, { maxMessages });
  const memory = new MemoryQueue({ maxMessages });
  for (let i = 0; i < count; i++) {
    const stored = await journal.append(payload(i));
    memory.add({ ...stored, hash: messageHash(stored.bytes) });
  }
  return { journal, memory };
}

/** Everything the forwarder can ask of a queue. */
function view(queue: ReadingQueue & { count(): number }) {
  return {
    head: queue.head(), oldest: queue.oldest(), acked: queue.acked(), count: queue.count(),
    batches: [[0, 3], [2, 2], [5, 100], [9, 1], [40, 4]].map(([from, limit]) => queue.batch(from!, limit!).map((m) => [m.seq, Buffer.from(m.bytes).toString('hex')])),
  };
}

test('empty, filled, partly and wholly receipted: the journal and the memory queue answer alike', async () => {
  const { journal, memory } = await both('alike', 0);
  assert.equal(view(memory), view(journal), 'empty');
  for (let i = 0; i < 12; i++) {
    const stored = await journal.append(payload(i));
    memory.add({ ...stored, hash: messageHash(stored.bytes) });
  }
  assert.equal(view(memory), view(journal), 'filled');
  assert.is(memory.head()!.seq, 11);
  for (const seq of [3, 2, 7, 11, 11]) {
    journal.removeThrough(seq);
    memory.removeThrough(seq);
    assert.equal(view(memory), view(journal), `after a receipt through ${seq}`);
  }
  assert.is(memory.oldest(), undefined, 'all receipted: nothing stored');
  const stored = await journal.append(payload(12));
  memory.add({ ...stored, hash: messageHash(stored.bytes) });
  assert.equal(view(memory), view(journal), 'a message after all were receipted');
  journal.close();
});

test('past the bound the oldest go, in both; a message out of chain order is refused by the memory queue', async () => {
  const { journal, memory } = await both('bound', 150, 100);
  assert.equal(view(memory), view(journal));
  assert.is(memory.oldest(), 50);
  assert.is(memory.dropped, journal.stats().dropped);
  journal.removeThrough(120);
  memory.removeThrough(120);
  assert.equal(view(memory), view(journal));
  assert.throws(() => memory.add({ seq: 152, bytes: new Uint8Array(1), hash: new Uint8Array(32) }), /seq 152 does not follow the head \(expected 150\)/);
  journal.close();
});

test.run();
