// Metrics whose values are read at scrape time from counters the agent keeps anyway
// (journal, forwarder, sensors, mesh), so nothing is counted twice and a scrape shows
// the same figures as `iop-agent mesh --json` and the control socket.
import { Counter, Gauge, type Registry } from 'prom-client';

export type Labels = Record<string, string>;
/** One value, or one value per label set; undefined: no series this scrape. */
export type Sample = number | readonly (readonly [Labels, number])[] | undefined;

interface SampledOptions {
  name: string;
  help: string;
  labelNames?: readonly string[];
  read: () => Sample;
}

/** A counter that mirrors a monotonic count kept elsewhere. */
export function sampledCounter(registry: Registry, options: SampledOptions): void {
  new Counter({ ...metricConfig(registry, options), collect() {
    this.reset();
    for (const [labels, value] of series(options.read())) this.inc(labels, value);
  } });
}

/** A gauge read at scrape time. */
export function sampledGauge(registry: Registry, options: SampledOptions): void {
  new Gauge({ ...metricConfig(registry, options), collect() {
    this.reset();
    for (const [labels, value] of series(options.read())) this.set(labels, value);
  } });
}

function metricConfig(registry: Registry, options: SampledOptions) {
  return { name: options.name, help: options.help, labelNames: options.labelNames ?? [], registers: [registry] };
}

function series(sample: Sample): readonly (readonly [Labels, number])[] {
  if (sample === undefined) return [];
  return typeof sample === 'number' ? [[{}, sample]] : sample;
}
