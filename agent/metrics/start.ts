// `run --metrics ADDR` / metrics.listen: the agent's metrics on a listener of their own.
import type { Logger } from '../log.ts';
import { createAgentMetrics, type MetricsSources } from './agent-metrics.ts';
import { metricsHandler } from './handler.ts';
import { serveMetrics, type ListenAddress } from './server.ts';

export interface MetricsListener {
  readonly url: string;
  close(): Promise<void>;
}

export async function startMetricsListener(options: { address: ListenAddress; sources: MetricsSources; log: Logger }): Promise<MetricsListener> {
  const { address } = options;
  const log = options.log.child('metrics');
  const { server, url } = await serveMetrics(address, metricsHandler(createAgentMetrics(options.sources), log));
  log.info(`Prometheus metrics at ${url}`);
  return {
    url,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
