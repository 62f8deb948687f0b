// Reconnect delays: doubling from min to max, each drawn between half and all of the
// current step, so a fleet that lost its broker at once does not return at once.
export class Backoff {
  private attempt = 0;
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(minMs: number, maxMs: number, random: () => number = Math.random) {
    this.minMs = minMs;
    this.maxMs = maxMs;
    this.random = random;
  }

  next(): number {
    const step = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(step / 2 + this.random() * (step / 2));
  }

  reset(): void {
    this.attempt = 0;
  }
}
