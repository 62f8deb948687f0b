// The gateway's pairing registry: verifies pairing claims (the box's COSE signature and
// the owner's EIP-712 signature), records device -> owner, lets paired devices' readings
// in without --allow, publishes the retained owner record and a gateway-signed pairing
// receipt. Refusals are counted by reason.
import type { DeviceIdentity } from '../codec/identity.ts';
import { errorMessage } from '../errors.ts';
import type { DeviceKey } from '../identity/device-key.ts';
import type { Logger } from '../log.ts';
import { ownerTopic, pairReceiptTopic, type ClaimPayload, type PairReceipt } from '../pairing/claim.ts';
import { DOMAIN, ZERO_ADDRESS, type PairingMessage, isAddress, pairingTypedData, recoverAddress, sameAddress, typedDataDigest } from '../pairing/eip712.ts';
import { openJson, signJson } from '../pairing/signed-json.ts';
import { MqttSession, type SessionOptions } from '../uplink/session.ts';
import { RateLimitedLog } from '../uplink/rate-limited-log.ts';
import { TOPIC_ROOT } from '../uplink/topics.ts';
import type { DeviceRegistry } from './registry.ts';
import { FilePairingStore, type PairingEntry, type PairingStore } from './pairing-store.ts';

export { PAIRINGS_FILE, type PairingEntry } from './pairing-store.ts';
const MAX_CLAIM_BYTES = 8192;
const PAIR_TOPIC = /^iop\/v1\/([a-z2-7]{2,128})\/pair$/;

export type PairingRefusal = 'malformed' | 'bad-box-signature' | 'other-device' | 'bad-owner-signature' | 'not-current-owner' | 'nonce-reused';

export class Pairings {
  /** what this gateway has seen recorded (the store holds the truth) */
  private readonly entries = new Map<string, PairingEntry>();
  private readonly store: PairingStore;
  private readonly session: MqttSession;
  private readonly rejections: RateLimitedLog;
  readonly counters = { recorded: 0, repeated: 0, refused: { 'malformed': 0, 'bad-box-signature': 0, 'other-device': 0, 'bad-owner-signature': 0, 'not-current-owner': 0, 'nonce-reused': 0 } as Record<PairingRefusal, number> };
  private readonly options: { session: Omit<SessionOptions, 'subscriptions' | 'log'>; stateDir: string; key: DeviceKey; identity: DeviceIdentity; registry: DeviceRegistry; log: Logger;
    /** where pairings are kept (pairing-store.ts); pairings.json in stateDir when absent */
    store?: PairingStore | undefined;
    /** a pairing just recorded, for the chain relay (docs/chain.md) */
    onRecorded?: (device: string, message: PairingMessage, signature: string) => void };

  constructor(options: Pairings['options']) {
    this.options = options;
    this.rejections = new RateLimitedLog(options.log);
    this.store = options.store ?? new FilePairingStore(options.stateDir);
    this.session = new MqttSession({ ...options.session, subscriptions: [`${TOPIC_ROOT}/+/pair`], log: options.log.child('pairing-mqtt') });
    this.session.on('message', (topic, payload) => void this.onClaim(topic, new Uint8Array(payload)).catch((err) => this.refuse('malformed', `${topic}: ${errorMessage(err)}`)));
  }

  get size(): number { return this.entries.size; }
  owner(device: string): PairingEntry | undefined { return this.entries.get(device); }
  list(): PairingEntry[] { return [...this.entries.values()]; }

  /** Loads the pairings recorded (by any gateway sharing the store), then takes claims. */
  async start(): Promise<void> {
    for (const entry of await this.store.all()) this.learn(entry);
    this.session.start();
  }
  stop(): Promise<void> { return this.session.stop(); }

  async onClaim(topic: string, bytes: Uint8Array): Promise<void> {
    const device = PAIR_TOPIC.exec(topic)?.[1];
    if (!device) return;
    if (bytes.length === 0) return; // a cleared retained claim
    if (bytes.length > MAX_CLAIM_BYTES) return this.refuse('malformed', `${bytes.length}-byte claim on ${topic}`);
    let opened;
    try {
      opened = openJson(bytes);
    } catch (err) {
      return this.refuse('bad-box-signature', `claim on ${topic}: ${errorMessage(err)}`);
    }
    if (opened.signer.id !== device) return this.refuse('other-device', `claim signed by ${opened.signer.id} on the topic of ${device}`);
    const claim = opened.value as Partial<ClaimPayload>;
    const m = claim.typedData?.message;
    if (!m || claim.typedData?.primaryType !== 'Pairing' || claim.typedData.domain?.name !== DOMAIN.name || claim.typedData.domain.version !== DOMAIN.version
      || typeof claim.signature !== 'string' || !isAddress(m.owner) || !isAddress(m.previousOwner) || typeof m.nonce !== 'string') {
      return this.refuse('malformed', `claim of ${device} is not a Pairing typed data and signature`);
    }
    if (m.device !== device) return this.refuse('other-device', `claim of ${device} pairs device ${m.device}`);
    // Rebuilt from the message: only the fixed types and domain count, whatever was sent.
    let signer: string;
    try {
      signer = recoverAddress(typedDataDigest(pairingTypedData(m)), claim.signature);
    } catch (err) {
      return this.refuse('bad-owner-signature', `claim of ${device}: ${errorMessage(err)}`);
    }
    const expected = sameAddress(m.previousOwner, ZERO_ADDRESS) ? m.owner : m.previousOwner;
    if (!sameAddress(signer, expected)) return this.refuse('bad-owner-signature', `claim of ${device} is signed by ${signer}, not ${expected}`);
    type Outcome = { kind: 'repeated' | 'recorded'; entry: PairingEntry } | { kind: 'refused'; why: PairingRefusal; message: string };
    // Decided on the stored entry: another gateway sharing the store may have recorded
    // this claim (or a newer one) a moment ago.
    const outcome = await this.store.update<Outcome>(device, (current) => {
      if (current?.nonce === m.nonce && sameAddress(current.owner, m.owner)) return { result: { kind: 'repeated', entry: current } };
      if (current?.usedNonces.includes(m.nonce)) return { result: { kind: 'refused', why: 'nonce-reused', message: `claim of ${device} reuses nonce ${m.nonce}` } };
      if (current && !sameAddress(m.previousOwner, current.owner) && !sameAddress(m.previousOwner, ZERO_ADDRESS)) {
        return { result: { kind: 'refused', why: 'not-current-owner', message: `claim of ${device} replaces ${m.previousOwner}, but the owner is ${current.owner}` } };
      }
      // previousOwner zero on a paired device: the box was factory reset on its console
      // (its own signature on the claim vouches for that).
      const entry: PairingEntry = { device, owner: m.owner, pairedAt: new Date().toISOString(), nonce: m.nonce, usedNonces: [...(current?.usedNonces ?? []), m.nonce].slice(-64) };
      return { store: entry, result: { kind: 'recorded', entry } };
    });
    if (outcome.kind === 'refused') return this.refuse(outcome.why, outcome.message);
    this.learn(outcome.entry);
    if (outcome.kind === 'repeated') {
      this.counters.repeated++;
      return this.answer(outcome.entry); // the box did not get the receipt: the same answer again
    }
    this.counters.recorded++;
    this.options.log.info(`device ${device} paired to ${m.owner}`);
    this.options.onRecorded?.(device, m as PairingMessage, claim.signature);
    await this.answer(outcome.entry);
  }

  private learn(entry: PairingEntry): void {
    this.entries.set(entry.device, entry);
    this.options.registry.allowPaired(entry.device);
  }

  private async answer(entry: PairingEntry): Promise<void> {
    const client = this.session.connectedClient;
    if (!client) return;
    const record = { device: entry.device, owner: entry.owner, pairedAt: entry.pairedAt, nonce: entry.nonce };
    const receipt: PairReceipt = record;
    const signed = await signJson(this.options.identity, this.options.key, receipt);
    await client.publishAsync(ownerTopic(entry.device), JSON.stringify(record), { qos: 1, retain: true });
    await client.publishAsync(pairReceiptTopic(entry.device), Buffer.from(signed), { qos: 1, retain: true });
  }

  private refuse(why: PairingRefusal, message: string): void {
    this.counters.refused[why]++;
    this.rejections.error(`pairing refused (${why}): ${message}`);
  }
}
