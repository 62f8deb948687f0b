// The pairing claim: the owner's typed data and signature, signed again by the box
// (COSE_Sign1, signed-json.ts), published retained on iop/v1/<id>/pair. It is kept in
// the state dir and published on every connection until the gateway's pairing receipt
// (iop/v1/<id>/pair/receipt) for the same nonce arrives, so a box paired offline sends
// it once it has an uplink. The receipt's gateway key is then pinned for readings'
// receipts when uplink.gatewayKeys is empty.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import type { DeviceIdentity } from '../codec/identity.ts';
import { toHex } from '../codec/hex.ts';
import type { DeviceKey } from '../identity/device-key.ts';
import type { Logger } from '../log.ts';
import { writeFileAtomic } from '../state-dir.ts';
import { PINNED_GATEWAYS_FILE } from '../uplink/receipt-trust.ts';
import { TOPIC_ROOT } from '../uplink/topics.ts';
import type { OwnerRecord } from './owner-store.ts';
import { openJson, signJson } from './signed-json.ts';

export const CLAIM_FILE = 'pair-claim.cose';

export function pairTopic(device: string): string { return `${TOPIC_ROOT}/${device}/pair`; }
export function pairReceiptTopic(device: string): string { return `${TOPIC_ROOT}/${device}/pair/receipt`; }
export function ownerTopic(device: string): string { return `${TOPIC_ROOT}/${device}/owner`; }

export interface ClaimPayload { typedData: OwnerRecord['typedData']; signature: string }
export interface PairReceipt { device: string; owner: string; nonce: string; pairedAt: string }

export function makeClaim(identity: DeviceIdentity, key: DeviceKey, record: OwnerRecord): Promise<Uint8Array> {
  const payload: ClaimPayload = { typedData: record.typedData, signature: record.signature };
  return signJson(identity, key, payload);
}

export interface SessionLike {
  on(event: 'connect', listener: (client: MqttClient) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
}

export class ClaimOutbox {
  private readonly path: string;
  private client: MqttClient | undefined;
  readonly counters = { published: 0, confirmed: 0, receiptsRefused: 0 };
  private readonly options: { identity: DeviceIdentity; stateDir: string; gatewayKeys: string[]; currentNonce: () => string | undefined; log: Logger };

  constructor(options: ClaimOutbox['options']) {
    this.options = options;
    this.path = join(options.stateDir, CLAIM_FILE);
  }

  get pending(): boolean {
    return existsSync(this.path);
  }

  /** Stores the claim (replacing an older one) and publishes it when connected. */
  store(claim: Uint8Array): void {
    writeFileAtomic(this.path, claim, 0o600);
    if (this.client) this.publish(this.client);
  }

  attach(session: SessionLike): void {
    const id = this.options.identity.id;
    session.on('connect', (client) => {
      this.client = client;
      client.subscribe(pairReceiptTopic(id), { qos: 1 });
      if (this.pending) this.publish(client);
    });
    session.on('message', (topic, payload) => {
      if (topic === pairReceiptTopic(id)) this.onReceipt(new Uint8Array(payload));
    });
  }

  private publish(client: MqttClient): void {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.path);
    } catch {
      return;
    }
    client.publish(pairTopic(this.options.identity.id), bytes, { qos: 1, retain: true }, (err) => {
      if (err) this.options.log.warn(`pairing claim not published (sent again on the next connection): ${err.message}`);
      else this.counters.published++;
    });
  }

  private onReceipt(bytes: Uint8Array): void {
    const { log } = this.options;
    let receipt: PairReceipt;
    let gateway: string;
    try {
      const opened = openJson(bytes);
      receipt = opened.value as PairReceipt;
      gateway = toHex(opened.signer.publicKey);
    } catch (err) {
      this.counters.receiptsRefused++;
      return log.warn(`pairing receipt refused: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (receipt.device !== this.options.identity.id || receipt.nonce !== this.options.currentNonce()) return; // an older pairing's
    if (!this.pending) return;
    rmSync(this.path, { force: true });
    this.counters.confirmed++;
    log.info(`gateway ${gateway} recorded the pairing to ${receipt.owner}`);
    this.pin(gateway);
  }

  /** Pins the gateway that recorded the pairing, unless keys are configured or one is pinned. */
  private pin(gateway: string): void {
    const file = join(this.options.stateDir, PINNED_GATEWAYS_FILE);
    if (this.options.gatewayKeys.length > 0 || existsSync(file)) return;
    writeFileAtomic(file, JSON.stringify({ publicKeys: [gateway] }, null, 2) + '\n', 0o644);
    this.options.log.info(`gateway ${gateway} pinned for receipts in ${file}`);
  }
}
