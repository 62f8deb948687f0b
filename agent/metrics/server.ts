// The agent's own metrics listener (config metrics.listen, run --metrics ADDR): node:http
// serving only GET /metrics. The status page's server, when it listens, mounts the same
// handler instead.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IopError } from '../errors.ts';
import { METRICS_PATH } from './handler.ts';
import type { ListenAddress } from './listen-address.ts';

export { parseListenAddress, type ListenAddress } from './listen-address.ts';

/** Listens on `address` and serves `handler` at /metrics (404 elsewhere); resolves with the bound URL. */
export async function serveMetrics(address: ListenAddress, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (new URL(req.url ?? '/', 'http://box').pathname === METRICS_PATH) handler(req, res);
    else res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: this listener serves ${METRICS_PATH}\n`);
  });
  // A scraper that keeps its connection open must not hold up the agent's shutdown, and
  // a LAN full of clients must not hold the box's sockets and memory.
  server.keepAliveTimeout = 5_000;
  server.maxConnections = 16;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new IopError('CONFIG', `metrics: cannot listen on ${address.host}:${address.port}: ${err.code ?? err.message}`)));
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return { server, url: `http://${host}:${bound.port}${METRICS_PATH}` };
}
