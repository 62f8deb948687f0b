// The forwarder's publisher when this box has no uplink of its own: a reading goes
// through the mesh to the uplink box in use, which publishes it unchanged. A publish
// completes when the first hop has taken the reading, so the forwarder's window paces
// what this box puts on the air; the gateway's receipt, relayed back, is what deletes it.
import { realClock, type Clock } from '../../drivers/clock.ts';
import type { MeshNode } from '../../mesh/node.ts';
import type { Publisher } from '../uplink/forwarder.ts';

export class MeshPublisher implements Publisher {
  private readonly node: MeshNode;
  private readonly clock: Clock;
  private readonly inFlight = new Set<(error?: Error) => void>();
  /** why publishes failed: no uplink box reachable now, or the mesh dropped the reading after taking it */
  readonly counters = { noUplink: 0, dropped: 0 };

  constructor(node: MeshNode, clock: Clock = realClock) {
    this.node = node;
    this.clock = clock;
  }

  publish(_topic: string, payload: Buffer, _options: { qos: 1 }, callback: (error?: Error) => void): void {
    const uplink = this.node.bestUplink();
    const done = (error?: Error) => {
      if (!this.inFlight.delete(done)) return;
      callback(error);
    };
    this.inFlight.add(done);
    const sent = uplink !== undefined && this.node.sendToUplink(payload, (taken) => {
      if (!taken) this.counters.dropped++;
      done(taken ? undefined : new Error(`the mesh dropped the reading on its way to uplink box ${uplink.idHex}`));
    });
    // Failed later, not inside publish(): the forwarder is still counting what it publishes.
    if (!sent) this.counters.noUplink++;
    if (!sent) this.clock.setTimeout(() => done(new Error('no uplink box reachable through the mesh')), 0);
  }

  /** Fails everything in flight (the forwarder detaches from the mesh). */
  abandon(): void {
    for (const done of [...this.inFlight]) done(new Error('mesh path given up'));
  }
}
