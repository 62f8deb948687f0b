// The status page's HTTP server: the page's assets (gzip-compressed on first request,
// then kept), documents made on each request (the state, compressed per request: the
// first state with an hour of charts is the largest part of a first load), the WebSocket
// at /ws, and routes its caller adds (e.g. /metrics). Read-only: GET and HEAD only. With a
// password, every request and the WebSocket need HTTP basic auth.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export type Route = (req: IncomingMessage, res: ServerResponse) => void;

export interface Asset { type: string; body: string }

interface Prepared { type: string; raw: Buffer; gzip?: Buffer; etag: string }

export interface StatusServerOptions {
  host: string;
  port: number;
  /** basic auth password (any user name); undefined: no auth */
  password?: string | undefined;
  /** path -> asset, served compressed when the client accepts gzip */
  assets: Map<string, Asset>;
  /** path -> a document made on each request (not cached), compressed like the assets */
  documents?: Map<string, () => Asset> | undefined;
  /** more paths the caller serves itself, behind the same auth */
  extraRoutes?: Map<string, Route> | undefined;
  onSocket(ws: WebSocket): void;
}

export interface StatusServer {
  readonly server: Server;
  address(): AddressInfo;
  close(): Promise<void>;
}

/** The largest message a client may send; it sends none, so this is only a bound. */
const MAX_CLIENT_PAYLOAD = 1024;

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Whether the request carries the password (compared in constant time, digests of equal length). */
export function authorized(req: IncomingMessage, password: string | undefined): boolean {
  if (password === undefined) return true;
  const header = req.headers.authorization ?? '';
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!match) return false;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  return timingSafeEqual(digest(decoded.slice(colon + 1)), digest(password));
}

/** A cross-site page must not read the box's state through the visitor's browser. */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** The assets as bytes only: the strings they came from need not stay in memory. */
function prepare(assets: Map<string, Asset>): Map<string, Prepared> {
  return new Map([...assets].map(([path, { type, body }]) => {
    const raw = Buffer.from(body, 'utf8');
    return [path, { type, raw, etag: `"${createHash('sha256').update(raw).digest('base64url').slice(0, 16)}"` }];
  }));
}

/**
 * zlib is loaded when a page is first asked for (an agent whose page nobody opens never
 * loads it), and deflates with an 8 KiB window and small hash tables: about 70 KB of
 * working memory instead of about 260 KB, for about the same output (measured: the state
 * with an hour of 20 charts 3 % smaller, the page's script 2 % larger).
 */
const gzip = (raw: Buffer, level: number) => process.getBuiltinModule('node:zlib').gzipSync(raw, { level, windowBits: 13, memLevel: 6 });

const acceptsGzip = (req: IncomingMessage) => /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));

function send(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>, body: Buffer, gzipped: boolean): void {
  if (gzipped) headers['Content-Encoding'] = 'gzip';
  headers['Content-Length'] = String(body.length);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function serveAsset(req: IncomingMessage, res: ServerResponse, asset: Prepared): void {
  const headers: Record<string, string> = { ...SECURITY_HEADERS, 'Content-Type': asset.type, ETag: asset.etag, Vary: 'Accept-Encoding' };
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, headers).end();
    return;
  }
  if (!acceptsGzip(req)) return send(req, res, headers, asset.raw, false);
  asset.gzip ??= gzip(asset.raw, 9);
  send(req, res, headers, asset.gzip, true);
}

/**
 * Made now, so taken at one moment. Compressed on this thread (a few ms for an hour of 20
 * charts, once per page load): zlib on the thread pool would have up to four worker
 * threads' malloc arenas each keep deflate's buffers in RSS.
 */
function serveDocument(req: IncomingMessage, res: ServerResponse, make: () => Asset): void {
  const { type, body } = make();
  const raw = Buffer.from(body, 'utf8');
  const headers: Record<string, string> = { ...SECURITY_HEADERS, 'Content-Type': type, 'Cache-Control': 'no-store', Vary: 'Accept-Encoding' };
  const gzipped = acceptsGzip(req);
  send(req, res, headers, gzipped ? gzip(raw, 6) : raw, gzipped);
}

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', ...headers }).end(`${text}\n`);
}

const CHALLENGE = { 'WWW-Authenticate': 'Basic realm="iop-agent status", charset="UTF-8"' };

export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  const assets = prepare(options.assets);
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_PAYLOAD, perMessageDeflate: false });
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (!authorized(req, options.password)) return plain(res, 401, 'authentication required', CHALLENGE);
    const extra = options.extraRoutes?.get(path);
    if (extra) return extra(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'the status page is read-only', { Allow: 'GET, HEAD' });
    const asset = assets.get(path);
    if (asset) return serveAsset(req, res, asset);
    const document = options.documents?.get(path);
    if (document) return serveDocument(req, res, document);
    plain(res, 404, 'not found');
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '/').split('?')[0];
    const refuse = (status: string) => socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n${status.startsWith('401') ? `WWW-Authenticate: ${CHALLENGE['WWW-Authenticate']}\r\n` : ''}\r\n`);
    if (path !== '/ws') return refuse('404 Not Found');
    if (!authorized(req, options.password)) return refuse('401 Unauthorized');
    if (!sameOrigin(req)) return refuse('403 Forbidden');
    wss.handleUpgrade(req, socket, head, (ws) => options.onSocket(ws));
  });
  // A client that resets its connection must not become an uncaught error.
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    address: () => server.address() as AddressInfo,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
