// Beacons and witnesses of a box without uplink wait here while it has no route to an
// uplink box: it tries again every minute, keeping the newest 64 (a witness is worth
// something only within its epoch).
import type { Clock, TimerHandle } from '../../drivers/clock.ts';
import type { MeshNode } from '../../mesh/node.ts';

const RETRY_MS = 60_000;
const KEEP = 64;

export class ReportQueue {
  private readonly node: MeshNode;
  private readonly clock: Clock;
  private readonly waiting: Uint8Array[] = [];
  private timer: TimerHandle | undefined;
  readonly counters = { sent: 0, retried: 0, dropped: 0 };

  constructor(node: MeshNode, clock: Clock) {
    this.node = node;
    this.clock = clock;
  }

  add(bytes: Uint8Array): void {
    this.waiting.push(bytes);
    if (this.waiting.length > KEEP) {
      this.waiting.shift();
      this.counters.dropped++;
    }
    this.flush();
  }

  stop(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private flush(): void {
    // At most what waits now. Only a message with no route goes back to the queue: one the
    // first hop did not acknowledge may still have arrived (a lost ack), and sending it again
    // would spend airtime on a duplicate the gateway refuses.
    for (let n = this.waiting.length; n > 0 && !this.timer; n--) {
      const bytes = this.waiting.shift()!;
      if (this.node.sendToUplink(bytes, undefined, 'report')) this.counters.sent++;
      else this.retry(bytes);
    }
  }

  private retry(bytes: Uint8Array): void {
    this.counters.retried++;
    this.waiting.unshift(bytes);
    if (this.waiting.length > KEEP) {
      this.waiting.pop();
      this.counters.dropped++;
    }
    this.timer ??= this.clock.setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, RETRY_MS);
  }
}
