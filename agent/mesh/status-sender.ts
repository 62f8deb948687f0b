// A box without an uplink of its own still has a status: it signs its birth message
// ("uplink": "mesh") and sends it through the mesh to the uplink box in use, which
// publishes it (relayed-status.ts). It sends when it starts using an uplink box, when
// something a person acts on changes, and every `everyMs` as a heartbeat: the uplink box
// marks it offline when three heartbeats are missing. A clean stop sends a signed offline.
import type { Clock } from '../../drivers/clock.ts';
import type { MeshNode } from '../../mesh/node.ts';
import type { Box } from '../box.ts';
import { signStatus } from '../codec/status.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { birthStatus, offlineStatus, statusChangeKey } from '../uplink/status.ts';

/** a status the first hop did not take is sent again this soon */
const RETRY_MS = 2000;
/** how often to look for a change worth a status (as over MQTT: it counts the queue) */
const CHANGE_CHECK_MS = 60_000;

export class MeshStatusSender {
  private readonly node: MeshNode;
  private readonly box: Box;
  private readonly version: string;
  private readonly everyMs: number;
  private readonly epoch: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private via: string | undefined;
  private lastSentAt = -Infinity;
  private lastKey = '';
  private lastCheckAt = -Infinity;
  private sending = false;
  readonly counters = { sent: 0, failed: 0 };

  /** `epoch`: the box's mesh epoch, which rises at every start (orders statuses across a clock that went back) */
  constructor(options: { node: MeshNode; box: Box; version: string; everyMs: number; epoch: number; clock: Clock; log: Logger }) {
    this.node = options.node;
    this.box = options.box;
    this.version = options.version;
    this.everyMs = options.everyMs;
    this.epoch = options.epoch;
    this.clock = options.clock;
    this.log = options.log;
  }

  /**
   * The uplink box readings go to now (undefined: none, or this box's own uplink is up).
   * Called often: it sends when the uplink box changed, something changed, or a heartbeat is due.
   */
  update(via: string | undefined): void {
    if (this.sending) return; // a change is seen at the next call
    const changed = via !== this.via;
    this.via = via;
    if (via === undefined) return;
    const now = this.clock.now();
    if (!changed && now - this.lastSentAt < this.everyMs) {
      if (now - this.lastCheckAt < CHANGE_CHECK_MS) return;
      this.lastCheckAt = now;
      if (statusChangeKey(this.box) === this.lastKey) return;
    }
    this.lastKey = statusChangeKey(this.box);
    this.lastCheckAt = now;
    this.lastSentAt = now;
    void this.send(birthStatus(this.box, { version: this.version, ack: 'gateway', uplink: 'mesh' }));
  }

  /** A clean stop: a signed offline status, if an uplink box is in use. */
  async stop(): Promise<void> {
    if (this.via === undefined) return;
    this.via = undefined;
    await this.send(offlineStatus(this.box.identity.id, 'mesh'));
  }

  private async send(status: Record<string, unknown>): Promise<void> {
    this.sending = true;
    try {
      const bytes = await signStatus(this.box.identity, (tbs) => this.box.key.sign(tbs), { ...status, statusEveryS: this.everyMs / 1000, epoch: this.epoch });
      const sent = this.node.sendToUplink(bytes, (taken) => this.taken(taken), 'status');
      if (!sent) this.taken(false);
    } catch (err) {
      this.log.warn(`status not sent through the mesh: ${errorMessage(err)}`);
      this.taken(false);
    } finally {
      this.sending = false;
    }
  }

  private taken(taken: boolean): void {
    if (taken) {
      this.counters.sent++;
      return;
    }
    this.counters.failed++;
    // Try again soon rather than at the next heartbeat.
    this.lastSentAt = Math.min(this.lastSentAt, this.clock.now() - this.everyMs + RETRY_MS);
  }
}
