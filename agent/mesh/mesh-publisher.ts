// The forwarder's publisher when this box has no uplink of its own: a reading goes
// through the mesh to the best uplink box, which publishes it unchanged and answers
// with a 'puback' naming the reading's hash once the broker has it.
import { createHash } from 'node:crypto';
import type { MeshNode } from '../../mesh/node.ts';
import type { Publisher } from '../uplink/forwarder.ts';

const hashKey = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export class MeshPublisher implements Publisher {
  private readonly node: MeshNode;
  private readonly timeoutMs: number;
  private readonly pending = new Map<string, { callback: (error?: Error) => void; timer: NodeJS.Timeout }>();

  constructor(node: MeshNode, timeoutMs: number) {
    this.node = node;
    this.timeoutMs = timeoutMs;
  }

  publish(_topic: string, payload: Buffer, _options: { qos: 1 }, callback: (error?: Error) => void): void {
    const uplink = this.node.bestUplink();
    if (!uplink || !this.node.send(uplink.id, 'reading', payload)) {
      setImmediate(() => callback(new Error('no uplink box reachable through the mesh')));
      return;
    }
    const key = hashKey(payload);
    this.pending.get(key)?.callback(new Error('sent again'));
    clearTimeout(this.pending.get(key)?.timer);
    const timer = setTimeout(() => {
      this.pending.delete(key);
      callback(new Error(`no answer from uplink box ${uplink.idHex} within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    timer.unref();
    this.pending.set(key, { callback, timer });
  }

  /** The uplink box says the broker has the reading with this hash. */
  puback(hash: Uint8Array): void {
    const key = Buffer.from(hash).toString('hex');
    const entry = this.pending.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.pending.delete(key);
    entry.callback();
  }

  /** Fails everything in flight (the forwarder detaches from the mesh). */
  abandon(): void {
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.callback(new Error('mesh path given up'));
    }
    this.pending.clear();
  }
}

