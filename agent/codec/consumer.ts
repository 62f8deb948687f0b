// A consumer's view of a stream of readings from MQTT: signature, chain and
// duplicates checked here, nothing taken on trust from a gateway. No Node-only API.
//
// Readings of one device need not arrive in order: a box behind a mesh resends what
// its uplink lost, so a reading can arrive after later ones. The consumer therefore
// checks each reading against its neighbours in sequence (the one before and the one
// after, when it holds them), not against the last one to arrive: a late genuine
// reading that fits the hole it fills is taken, a forged or forked one is refused.
import { bytesEqual } from './hex.ts';
import { ReadingVerifier, VerifyError, type ChainStatus, type VerifiedReading } from './verify.ts';

/** How many recent readings per device the chain and duplicate checks remember. */
const DEDUP_WINDOW = 4096;
const DATA_TOPIC = /^iop\/v1\/([a-z2-7]+)\/data$/;

/** A reading as the consumer classified it: `late` when a later one came first. */
export interface ConsumedReading extends VerifiedReading {
  late: boolean;
}

export type ConsumerResult =
  | { kind: 'reading'; reading: ConsumedReading }
  | { kind: 'duplicate' }
  | { kind: 'rejected'; reason: 'malformed' | 'bad-signature' | 'topic-mismatch' | 'replay' | 'broken-chain' | 'too-old'; detail: string };

interface Link {
  hash: Uint8Array;
  prev: Uint8Array;
}

/** What the consumer remembers of one device: recent links by seq, and what fell out. */
interface DeviceWindow {
  links: Map<number, Link>;
  highest: number;
  /** Highest seq forgotten to keep the window bounded: older readings cannot be checked. */
  forgottenThrough: number;
}

/** Verification as a consumer does it: signature, chain, duplicates; nothing trusted. */
export class VerifyingConsumer {
  readonly counters = { readings: 0, duplicates: 0, gaps: 0, late: 0, rejected: {} as Record<string, number> };
  private readonly verifier = new ReadingVerifier();
  private readonly devices = new Map<string, DeviceWindow>();

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
    const window = this.devices.get(reading.device);
    const seen = window?.links.get(reading.seq);
    if (seen) {
      if (bytesEqual(seen.hash, reading.hash)) {
        this.counters.duplicates++;
        return { kind: 'duplicate' };
      }
      return this.rejected('replay', `seq ${reading.seq} of ${reading.device} differs from the one received before`);
    }
    if (window && reading.seq <= window.forgottenThrough) {
      return this.rejected('too-old', `seq ${reading.seq} of ${reading.device} is older than the ${DEDUP_WINDOW} readings remembered: cannot tell it from a replay`);
    }
    const chain = window ? placeInChain(window, reading) : 'start';
    if (chain === 'broken') return this.rejected('broken-chain', `seq ${reading.seq} of ${reading.device} does not link to its neighbours in sequence`);
    const late = window !== undefined && reading.seq < window.highest;
    this.remember(reading);
    this.counters.readings++;
    if (chain === 'gap') this.counters.gaps++;
    if (late) this.counters.late++;
    return { kind: 'reading', reading: { ...reading, chain, late } };
  }

  private remember(reading: VerifiedReading): void {
    let window = this.devices.get(reading.device);
    if (!window) this.devices.set(reading.device, (window = { links: new Map(), highest: reading.seq, forgottenThrough: -1 }));
    window.links.set(reading.seq, { hash: reading.hash, prev: reading.prev });
    window.highest = Math.max(window.highest, reading.seq);
    if (window.links.size > DEDUP_WINDOW) {
      const oldest = Math.min(...window.links.keys());
      window.links.delete(oldest);
      window.forgottenThrough = Math.max(window.forgottenThrough, oldest);
    }
  }

  private rejected(reason: Extract<ConsumerResult, { kind: 'rejected' }>['reason'], detail: string): ConsumerResult {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
    return { kind: 'rejected', reason, detail };
  }
}

/**
 * How a reading fits between the device's readings the consumer holds: `ok` when its
 * prev is the hash of seq-1, `gap` when seq-1 is missing, `broken` when it contradicts
 * either neighbour (its prev is not seq-1's hash, or seq+1's prev is not its hash).
 */
function placeInChain(window: DeviceWindow, reading: VerifiedReading): ChainStatus {
  const before = window.links.get(reading.seq - 1);
  const after = window.links.get(reading.seq + 1);
  if (before && !bytesEqual(before.hash, reading.prev)) return 'broken';
  if (after && !bytesEqual(after.prev, reading.hash)) return 'broken';
  if (before) return 'ok';
  return reading.seq === 0 ? 'start' : 'gap';
}
