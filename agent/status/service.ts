// The status page on a running agent (config `status`, `iop-agent run --status ADDR`):
// gathers the state, keeps the last hour of values for the charts, and pushes every
// change to the page's WebSocket clients. Nothing is gathered on a timer while no page
// is open, except the charts' history, which the sampler feeds.
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Box } from '../box.ts';
import type { SenmlPack } from '../codec/senml.ts';
import { LastValues } from '../console/box-facts.ts';
import { IopError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { MeshService } from '../mesh/service.ts';
import type { ListenAddress } from '../metrics/server.ts';
import type { Uplink } from '../uplink/uplink.ts';
import { Clients } from './clients.ts';
import { History } from './history.ts';
import { PAGE_ASSETS } from './page/assets.ts';
import { startStatusServer, type Route, type StatusServer } from './server.ts';
import { StateGatherer, type StatusState } from './state.ts';
import { UplinkWatch } from './uplink-watch.ts';

export interface StatusPageOptions {
  address: ListenAddress;
  /** file holding the basic auth password (status.password); undefined: no auth */
  password?: string | undefined;
  /** "no uplink" is a problem after this many seconds (status.noUplinkAlertS) */
  noUplinkAlertS?: number | undefined;
  box: Box;
  broker: string | null;
  uplink: Uplink | undefined;
  mesh: () => MeshService | undefined;
  stateDir: string;
  log: Logger;
  /** more routes served behind the same auth, e.g. /metrics */
  extraRoutes?: Map<string, Route>;
  /** how often the state is looked at for changes while a page is open */
  refreshEveryMs?: number;
}

export interface StatusPage {
  /** A sampled pack: last values and the charts. */
  onPack(pack: SenmlPack): void;
  address(): AddressInfo;
  readonly clients: Clients;
  /** TCP connections open to the page's server (HTTP and WebSocket). */
  connections(): Promise<number>;
  /** Looks at the state now and pushes what changed; returns the number of sections sent. */
  refresh(): number;
  stop(): Promise<void>;
}

function readPassword(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    const password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    if (password.length === 0) throw new Error('the file is empty');
    return password;
  } catch (err) {
    throw new IopError('CONFIG', `status.password file ${file}: ${errorMessage(err)}`, { path: file });
  }
}

const DEFAULT_NO_UPLINK_ALERT_S = 600;

export async function startStatusPage(options: StatusPageOptions): Promise<StatusPage> {
  const { host, port } = options.address;
  const password = readPassword(options.password);
  const log = options.log.child('status');
  const values = new LastValues();
  const history = new History();
  let refreshSoon: NodeJS.Timeout | undefined;
  const scheduleRefresh = () => {
    if (clients.size > 0) refreshSoon ??= setTimeout(() => { refreshSoon = undefined; refresh(); }, 20);
  };
  const uplink = new UplinkWatch(options.uplink?.session, options.broker, scheduleRefresh);
  const gatherer = new StateGatherer({
    box: options.box, values, uplink, mesh: options.mesh, stateDir: options.stateDir,
    startedAtMs: Date.now() - Math.round(process.uptime() * 1000), noUplinkAlertS: options.noUplinkAlertS ?? DEFAULT_NO_UPLINK_ALERT_S,
  });
  const sent = new Map<keyof StatusState, string>();
  let current: StatusState | undefined;
  const look = (): Partial<StatusState> => {
    current = gatherer.gather();
    const changed: Partial<Record<keyof StatusState, unknown>> = {};
    for (const key of Object.keys(current) as (keyof StatusState)[]) {
      const json = JSON.stringify(current[key]);
      if (sent.get(key) === json) continue;
      sent.set(key, json);
      changed[key] = current[key];
    }
    return changed as Partial<StatusState>;
  };
  // Every message to the clients is numbered: the whole state (GET /state.json) carries
  // the number of the last one sent before it, so a page applies only those after it.
  let seq = 0;
  const broadcast = (message: Record<string, unknown>) => clients.send(JSON.stringify({ ...message, seq: ++seq }));
  const clients = new Clients({ sync: () => JSON.stringify({ t: 'sync', seq }) });
  const pushChanges = (): number => {
    const changed = look();
    const count = Object.keys(changed).length;
    if (count > 0) broadcast({ t: 'change', nowMs: Date.now(), state: changed });
    return count;
  };
  // The whole state for one page, after pushing what changed: a state newer than the
  // changes sent would leave a value that changes back unsent to that page.
  const wholeState = () => {
    pushChanges();
    return { type: 'application/json', body: JSON.stringify({ seq, nowMs: Date.now(), state: current, history }) };
  };
  const refresh = (): number => (clients.size === 0 ? 0 : pushChanges());
  let server: StatusServer;
  try {
    server = await startStatusServer({ host, port, password, assets: PAGE_ASSETS, documents: new Map([['/state.json', wholeState]]), extraRoutes: options.extraRoutes, onSocket: (ws) => clients.add(ws) });
  } catch (err) {
    uplink.close();
    clients.close();
    throw new IopError('CONFIG', `status page: cannot listen on ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
  }
  const timer = setInterval(() => {
    gatherer.watchUplink();
    refresh();
  }, options.refreshEveryMs ?? 1000);
  const address = server.address();
  log.info(`status page on http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/${password ? ' (password required)' : ''}`);
  if (!password && host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') log.warn(`status page listens on ${host} without status.password: anyone on the network can read it`);
  return {
    clients,
    address: () => server.address(),
    connections: () => new Promise((resolve, reject) => server.server.getConnections((err, count) => (err ? reject(err) : resolve(count)))),
    refresh,
    onPack(pack) {
      values.onPack(pack);
      const points = history.onPack(pack);
      if (clients.size > 0 && points.length > 0) broadcast({ t: 'points', points });
      scheduleRefresh();
    },
    async stop() {
      clearInterval(timer);
      clearTimeout(refreshSoon);
      uplink.close();
      clients.close();
      await server.close();
    },
  };
}
