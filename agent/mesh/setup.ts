// What a box brings to the mesh from its state dir and config: its node id (from the
// device key), the mesh key, an epoch that rises at every start (replay protection), and
// its route seqno kept across restarts (so relays take its announcements as fresh).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IopError, errorMessage } from '../errors.ts';
import { writeFileAtomic } from '../state-dir.ts';
import { NODE_ID_BYTES } from '../../mesh/packet.ts';
import type { SeqnoStore } from '../../mesh/node.ts';

const EPOCH_FILE = 'mesh-epoch';
const SEQNO_FILE = 'mesh-seqno';

/** The mesh node id: the first bytes of the device's public key. */
export function meshNodeId(publicKey: Uint8Array): Uint8Array {
  return publicKey.slice(0, NODE_ID_BYTES);
}

export function readMeshKey(path: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new IopError('CONFIG', `mesh.keyFile ${path}: ${errorMessage(err)}`, { path });
  }
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new IopError('CONFIG', `mesh.keyFile ${path}: expected 64 hex digits (openssl rand -hex 32)`, { path });
  return Uint8Array.from(text.match(/../g)!.map((h) => parseInt(h, 16)));
}

/** A decimal number kept in a state-dir file; 0 if the file does not exist yet. */
function readCounter(path: string): number {
  try {
    return Number.parseInt(readFileSync(path, 'utf8'), 10) || 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new IopError('STATE_DIR', `cannot read ${path}: ${errorMessage(err)}`, { path });
    return 0;
  }
}

/** Reads, increments and durably stores the epoch before the first packet goes out. */
export function nextMeshEpoch(stateDir: string): number {
  const path = join(stateDir, EPOCH_FILE);
  const epoch = readCounter(path) + 1;
  writeFileAtomic(path, `${epoch}\n`, 0o600);
  return epoch;
}

/**
 * The route seqno across restarts, in `<state dir>/mesh-seqno`: the highest seqno the box
 * may have announced (it reserves a block ahead, so this is written once per block).
 */
export function meshSeqnoStore(stateDir: string): SeqnoStore {
  const path = join(stateDir, SEQNO_FILE);
  return {
    start: () => readCounter(path) & 0xffff,
    reserve: (upTo) => writeFileAtomic(path, `${upTo}\n`, 0o600),
  };
}
