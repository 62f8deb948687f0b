// A consumer's view of a stream of readings from MQTT: signature, chain and
// duplicates checked here, nothing taken on trust from a gateway. No Node-only API.
import { bytesEqual } from './hex.ts';
import { ReadingVerifier, VerifyError, type VerifiedReading } from './verify.ts';

/** How many recent (seq, hash) pairs a device's duplicate check remembers. */
const DEDUP_WINDOW = 4096;
const DATA_TOPIC = /^iop\/v1\/([a-z2-7]+)\/data$/;

export type ConsumerResult =
  | { kind: 'reading'; reading: VerifiedReading }
  | { kind: 'duplicate' }
  | { kind: 'rejected'; reason: 'malformed' | 'bad-signature' | 'topic-mismatch' | 'replay' | 'broken-chain'; detail: string };

/** Verification as a consumer does it: signature, chain, duplicates; nothing trusted. */
export class VerifyingConsumer {
  readonly counters = { readings: 0, duplicates: 0, gaps: 0, rejected: {} as Record<string, number> };
  private readonly verifier = new ReadingVerifier();
  private readonly recent = new Map<string, Map<number, Uint8Array>>();

  accept(topic: string, bytes: Uint8Array): ConsumerResult {
    const topicDevice = DATA_TOPIC.exec(topic)?.[1];
    let reading: VerifiedReading;
    try {
      reading = this.verifier.verify(bytes);
    } catch (err) {
      return this.rejected('malformed', `${topic}: ${err instanceof VerifyError ? err.message : String(err)}`);
    }
    if (topicDevice !== reading.device) return this.rejected('topic-mismatch', `message of ${reading.device} on ${topic}`);
    if (!reading.valid) return this.rejected('bad-signature', `seq ${reading.seq} of ${reading.device}`);
    const seen = this.recent.get(reading.device)?.get(reading.seq);
    if (seen) {
      if (bytesEqual(seen, reading.hash)) {
        this.counters.duplicates++;
        return { kind: 'duplicate' };
      }
      return this.rejected('replay', `seq ${reading.seq} of ${reading.device} differs from the one received before`);
    }
    if (reading.chain === 'broken') return this.rejected('broken-chain', `seq ${reading.seq} of ${reading.device} does not follow its predecessor`);
    this.remember(reading);
    this.counters.readings++;
    if (reading.chain === 'gap') this.counters.gaps++;
    return { kind: 'reading', reading };
  }

  private remember(reading: VerifiedReading): void {
    let seqs = this.recent.get(reading.device);
    if (!seqs) this.recent.set(reading.device, (seqs = new Map()));
    seqs.set(reading.seq, reading.hash);
    if (seqs.size > DEDUP_WINDOW) seqs.delete(seqs.keys().next().value!);
  }

  private rejected(reason: Extract<ConsumerResult, { kind: 'rejected' }>['reason'], detail: string): ConsumerResult {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
    return { kind: 'rejected', reason, detail };
  }
}
