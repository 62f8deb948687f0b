// The gateway's receipts: at most one per device every RECEIPT_EVERY_MS, naming the runs
// the store holds for it (read after the readings' transaction committed: a receipt
// names only what is stored), signed with the gateway's key and retained on the device's
// ack topic, so a box that was offline gets the latest one when it subscribes.
import { errorMessage } from '../errors.ts';
import type { DeviceIdentity } from '../codec/identity.ts';
import { signReceipt } from '../codec/receipt.ts';
import type { DeviceKey } from '../identity/device-key.ts';
import type { Logger } from '../log.ts';
import type { MqttSession } from '../uplink/session.ts';
import { deviceTopic } from '../uplink/topics.ts';
import type { GatewayStore } from './store.ts';

const RECEIPT_EVERY_MS = 100;

export interface ReceiptSenderOptions {
  store: Pick<GatewayStore, 'heldRanges'>;
  session: MqttSession;
  /** the gateway's own identity and key: what signs the receipts */
  identity: DeviceIdentity;
  key: DeviceKey;
  log: Logger;
  /** a receipt the broker acknowledged */
  onSent: () => void;
}

export class ReceiptSender {
  private readonly options: ReceiptSenderOptions;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly sending = new Set<Promise<void>>();
  private stopped = false;

  constructor(options: ReceiptSenderOptions) {
    this.options = options;
  }

  /** A receipt for this device soon: readings that come meanwhile share it. */
  schedule(identity: DeviceIdentity): void {
    if (this.stopped || this.timers.has(identity.id)) return;
    this.timers.set(identity.id, setTimeout(() => {
      this.timers.delete(identity.id);
      const sending = this.send(identity).finally(() => this.sending.delete(sending));
      this.sending.add(sending);
    }, RECEIPT_EVERY_MS));
  }

  /** No receipt is scheduled from now on; the ones waiting for their time are dropped. */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** Resolves when the receipts under way have read the store and been signed. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.sending]);
  }

  private async send(identity: DeviceIdentity): Promise<void> {
    if (this.stopped) return;
    const { log } = this.options;
    try {
      const ranges = await this.options.store.heldRanges(identity.id);
      const client = this.options.session.connectedClient;
      if (!ranges.length) return;
      // Not connected: the receipt waits for the connection, or the box would wait for its
      // ack timeout and resend.
      if (!client) return this.schedule(identity);
      const receipt = await signReceipt(this.options.identity, this.options.key.sign, {
        deviceKid: identity.kid, device: identity.id, ranges, time: Date.now() / 1000,
      });
      log.debug(`receipt for ${identity.id}: ${ranges.map((r) => `${r.first}..${r.last}`).join(', ')}`);
      // Not awaited: stop() waits for the store reads above, never for the broker's
      // acknowledgement, which a session closing after a broker restart may never get
      // (mqtt.js keeps such a publish for a resend that does not come); awaiting it left
      // stop() on a promise nothing settles, and the process ended without its summary.
      client.publishAsync(deviceTopic(identity.id, 'ack'), Buffer.from(receipt), { qos: 1, retain: true }).then(
        () => this.options.onSent(),
        (err: unknown) => log.warn(`receipt for ${identity.id} not sent: ${errorMessage(err)}`),
      );
    } catch (err) {
      log.warn(`receipt for ${identity.id} not sent: ${errorMessage(err)}`);
    }
  }
}
