// Reads values out of the Prometheus text format for assertions. Its syntax is checked by
// promtool (the real parser) where the test runs it; this only finds a sample's value.
export interface Exposition {
  /** The sample with exactly these labels; throws when there is none. */
  value(name: string, labels?: Record<string, string>): number;
  type(name: string): string | undefined;
  names(): string[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Exposition {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? '').matchAll(LABEL)) labels[key!] = raw!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const raw = match[3]!;
    samples.push({ name: match[1]!, labels, value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw) });
  }
  const same = (a: Record<string, string>, b: Record<string, string>) => Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);
  return {
    value(name, labels = {}) {
      const found = samples.find((s) => s.name === name && same(s.labels, labels));
      if (!found) throw new Error(`no sample ${name}${JSON.stringify(labels)}`);
      return found.value;
    },
    type: (name) => types.get(name),
    names: () => [...new Set(samples.map((s) => s.name))],
  };
}
