// GET /metrics as a plain request handler, so that any HTTP server of the agent (its own
// metrics listener, or the status page's) can serve it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { AgentMetrics } from './agent-metrics.ts';

export const METRICS_PATH = '/metrics';

export function metricsHandler(metrics: Pick<AgentMetrics, 'scrape' | 'contentType'>, log: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('only GET and HEAD\n');
      return;
    }
    metrics.scrape().then(
      (text) => {
        // Cache-Control: a scrape is a moment's figures, never to be served again by a proxy.
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        log.warn(`metrics scrape failed: ${errorMessage(err)}`);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('metrics unavailable\n');
      },
    );
  };
}
