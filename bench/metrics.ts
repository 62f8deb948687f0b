// Cost of one Prometheus scrape of the agent (GET /metrics over loopback: gathering the
// journal, sensor, uplink and mesh figures, prom-client's process metrics, formatting)
// against a bare node:http GET of a static body of the same size from the same kind of
// server, in one run; and what a scrape every 15 s costs the box in CPU.
// Usage: npm run bench:metrics [-- --quick]   (--quick: few short batches, for CI)
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeSenmlPack } from '../agent/codec/senml.ts';
import { loadDeviceKey } from '../agent/identity/software-key.ts';
import { silentLogger } from '../agent/log.ts';
import { createAgentMetrics, type MetricsSources } from '../agent/metrics/agent-metrics.ts';
import { metricsHandler } from '../agent/metrics/handler.ts';
import type { MeshService } from '../agent/mesh/service.ts';
import { Sampler } from '../agent/sampler.ts';
import { Journal } from '../agent/store/journal.ts';
import type { TimeKeeper } from '../agent/time/time-keeper.ts';
import { createSimulatedSensor, SIMULATED_QUANTITIES } from '../sensors/simulated.ts';
import { measurePair, report } from './measure.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const timing = values.quick ? { batches: 3, minBatchMs: 30 } : {};
const SCRAPE_EVERY_S = 15;
const QUEUED = values.quick ? 200 : 5000;

/** A radio mesh box's `mesh --json` figures: two links, a few neighbours and routes. */
const meshStatus = {
  links: ['kiss:/dev/ttyUSB0', 'udp:wlan0'].map((name, i) => ({
    name, txFrames: 1200 + i, txBytes: 91_000, rxFrames: 2400, rxBytes: 180_000, airtimeMs: 61_000 * (1 - i),
    ...(i === 0 ? { budgetLeftMs: 240_000, errors: { refusedQueueFull: 0, droppedLinkDown: 2 } } : {}),
  })),
  neighbours: [1, 2, 3].map((n) => ({ node: `n${n}` })),
  routes: [1, 2, 3, 4, 5].map((n) => ({ dest: `d${n}`, uplink: n === 1, selected: true })),
  counters: { forwarded: 40, delivered: 10, heldForBudget: 3, dropped: { noRoute: 1, hopLimit: 0, unacknowledged: 2 }, rejected: { mac: 0, replay: 1, malformed: 0 } },
};

const state = mkdtempSync(join(tmpdir(), 'iop-bench-metrics-'));
const servers: ReturnType<typeof createServer>[] = [];
try {
  const { key, identity } = loadDeviceKey(state, { create: true });
  const journal = Journal.open(state, identity, key);
  const sensors = SIMULATED_QUANTITIES.map((quantity) => createSimulatedSensor({ name: quantity, quantity }));
  const sampler = new Sampler({ intervalMs: 1000, sensors: sensors.map((sensor) => ({ sensor, intervalMs: 1000 })), log: silentLogger });
  let now = Date.now();
  for (let i = 0; i < QUEUED; i++) await journal.append(encodeSenmlPack((await sampler.tick(now += 1000, { all: true }))!));

  const sources: MetricsSources = {
    box: { identity, journal, sensors, time: { stamp: () => ({ quality: 'ntp' }) } as unknown as TimeKeeper },
    uplink: () => undefined,
    mesh: () => ({ status: () => meshStatus, forwarder: undefined }) as unknown as MeshService,
    recorded: { stored: QUEUED, failed: 0 },
  };
  const metrics = createAgentMetrics(sources);
  const size = Buffer.byteLength(await metrics.scrape());
  const staticBody = 'x'.repeat(size - 1) + '\n';

  const listen = async (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  };
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (port: number) => new Promise<void>((resolve, reject) => {
    request({ port, host: '127.0.0.1', path: '/metrics', agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject).end();
  });
  const scrapePort = await listen(metricsHandler(metrics, silentLogger));
  const staticPort = await listen((_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }).end(staticBody); });

  const [bare, scrape] = await measurePair(
    [`bare node:http GET, static ${(size / 1000).toFixed(1)} kB`, () => get(staticPort)],
    ['GET /metrics (agent figures + process metrics)', () => get(scrapePort)],
    timing,
  );
  const ratio = scrape.nsPerOp / bare.nsPerOp;
  // The whole scrape runs on this process (client and server): its time is an upper bound
  // of the agent's CPU per scrape.
  const corePercent = scrape.nsPerOp / 1e9 / SCRAPE_EVERY_S * 100;
  console.log(`${QUEUED} readings queued, 4 sensors, a mesh with 2 links; exposition ${size} bytes\n`);
  console.log(report(bare));
  console.log(report(scrape, bare));
  console.log(`\nscrape / bare GET of the same size: ${ratio.toFixed(2)}x`);
  console.log(`a scrape every ${SCRAPE_EVERY_S} s: ${corePercent.toFixed(4)} % of a core (goal <= 0.1 %) ${corePercent <= 0.1 ? 'MET' : 'NOT MET'}`);
  journal.close();
} finally {
  for (const server of servers) server.closeAllConnections();
  for (const server of servers) server.close();
  rmSync(state, { recursive: true, force: true });
}
