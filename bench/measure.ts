// Shared timing for benchmarks: a warm-up, then several batches, reporting the
// median cost per operation. Ratios against a reference measured in the same run are
// what to read; absolute figures depend on the machine.
export interface Measurement {
  name: string;
  nsPerOp: number;
  opsPerSecond: number;
}

type Op = () => unknown;

export async function measure(name: string, op: Op, { batches = 7, minBatchMs = 300 } = {}): Promise<Measurement> {
  const size = await batchSize(op, minBatchMs);
  const samples: number[] = [];
  for (let b = 0; b < batches; b++) samples.push(await timeBatch(op, size));
  return result(name, samples);
}

/**
 * Measures two operations in alternating batches, so that a load change on a shared
 * machine hits both alike and their ratio stays meaningful.
 */
export async function measurePair(reference: [string, Op], candidate: [string, Op], { batches = 9, minBatchMs = 300 } = {}): Promise<[Measurement, Measurement]> {
  const sizes = [await batchSize(reference[1], minBatchMs), await batchSize(candidate[1], minBatchMs)];
  const samples: [number[], number[]] = [[], []];
  for (let b = 0; b < batches; b++) {
    samples[0].push(await timeBatch(reference[1], sizes[0]!));
    samples[1].push(await timeBatch(candidate[1], sizes[1]!));
  }
  return [result(reference[0], samples[0]), result(candidate[0], samples[1])];
}

/** Warm-up and batch sizing: grow until one batch takes minBatchMs. */
async function batchSize(op: Op, minBatchMs: number): Promise<number> {
  let size = 16;
  for (;;) {
    const ms = (await timeBatch(op, size)) * size / 1e6;
    if (ms >= minBatchMs) return size;
    size = Math.ceil(size * Math.max(2, (minBatchMs * 1.2) / Math.max(ms, 1)));
  }
}

/** Nanoseconds per operation over one batch. */
async function timeBatch(op: Op, size: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < size; i++) await op();
  return Number(process.hrtime.bigint() - start) / size;
}

function result(name: string, samples: number[]): Measurement {
  const sorted = [...samples].sort((a, b) => a - b);
  const nsPerOp = sorted[Math.floor(sorted.length / 2)]!;
  return { name, nsPerOp, opsPerSecond: 1e9 / nsPerOp };
}

export function report(m: Measurement, reference?: Measurement): string {
  const ratio = reference ? `  ${(m.nsPerOp / reference.nsPerOp).toFixed(2)}x ${reference.name}` : '';
  return `${m.name.padEnd(52)} ${(m.nsPerOp / 1000).toFixed(1).padStart(8)} µs/op ${Math.round(m.opsPerSecond).toString().padStart(9)} op/s${ratio}`;
}
