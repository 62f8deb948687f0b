// The status page's costs, in one run:
//  - first load: bytes on the wire (gzip) for the page, its assets and the WebSocket's
//    first state (with a full hour of chart points), against the 150 KB goal;
//  - per pushed change (a reading: gather the state, find what changed, send it to 5
//    open pages): time per change against sending the same bytes to the same 5 clients
//    with no gathering (the reference), and against the 1 ms goal (wall time on this
//    thread, the clients' reading included: an upper bound of the agent's CPU);
//  - the agent's RSS with the page open in 5 clients against the same agent, page off.
// Usage: node bench/status-page.ts [--quick] [--seconds S]
//   (--quick: short batches and 3 s of RSS samples, for CI)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { openBox } from '../agent/box.ts';
import { validateConfig } from '../agent/config/load.ts';
import { silentLogger } from '../agent/log.ts';
import { startStatusPage } from '../agent/status/service.ts';
import { freePort } from '../harness/mosquitto.ts';
import { measurePair, report } from './measure.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, seconds: { type: 'string' } } });
const quick = values.quick ?? false;
const seconds = Number(values.seconds ?? (quick ? 3 : 20));
const root = join(import.meta.dirname, '..');
const CLIENTS = 5;
const FIRST_LOAD_GOAL = 150 * 1024;

/** Every byte the server sends for one GET (headers and gzip body). */
function wireBytes(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let bytes = 0;
    socket.on('data', (c: Buffer) => { bytes += c.length; });
    socket.on('end', () => resolve(bytes));
    socket.on('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: close\r\n\r\n`);
  });
}

function openClient(port: number): Promise<{ ws: WebSocket; firstBytes: number }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('message', (data: Buffer) => resolve({ ws, firstBytes: data.length }));
    ws.once('error', reject);
  });
}

const dir = mkdtempSync(join(tmpdir(), 'iop-status-bench-'));
const children: ChildProcess[] = [];
try {
  // ---- in process: first load and the cost of a pushed change ----
  const config = validateConfig({ stateDir: join(dir, 'in-process') }, 'bench');
  const box = await openBox(config, silentLogger);
  const page = await startStatusPage({ address: { host: '127.0.0.1', port: 0 }, box, broker: null, uplink: undefined, mesh: () => undefined, stateDir: config.stateDir, log: silentLogger, refreshEveryMs: 3_600_000 });
  const port = page.address().port;
  // The first state carries the charts' last hour: fill it, one reading every 10 s.
  const hourAgoS = Date.now() / 1000 - 3600;
  for (let i = 0; i < 360; i++) page.onPack({ time: hourAgoS + i * 10, records: box.sensors.map((s, k) => ({ n: s.name, u: 'Cel', v: 20 + k + Math.sin(i / 20) * 3 })) });
  const assets = await Promise.all(['/', '/app.css', '/app.js'].map((p) => wireBytes(port, p)));
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => openClient(port)));
  const firstLoad = assets.reduce((a, b) => a + b, 0) + clients[0]!.firstBytes;
  console.log(`first load: page ${assets[0]} B, css ${assets[1]} B, js ${assets[2]} B, first state with an hour of charts ${clients[0]!.firstBytes} B: ${(firstLoad / 1024).toFixed(1)} KB ` +
    `(goal <= 150 KB) ${firstLoad <= FIRST_LOAD_GOAL ? 'MET' : 'NOT MET'}`);

  let n = 0;
  const reading = () => ({ time: Date.now() / 1000, records: box.sensors.map((s, i) => ({ n: s.name, u: 'Cel', v: 20 + i + (n++ % 1000) / 100 })) });
  // The reference sends what one change sends (a points and a change message) to the same clients.
  const sample = JSON.stringify({ t: 'change', nowMs: Date.now(), state: { sensors: box.sensors.map((s) => ({ name: s.name, kind: s.kind, ok: true, failures: 0, values: [{ name: s.name, value: 20.5, unit: 'Cel', atMs: Date.now() }] })) } });
  const points = JSON.stringify({ t: 'points', points: box.sensors.map((s) => [s.name, 'Cel', Date.now(), 20.5]) });
  const sockets = [...(page as unknown as { clients: { clients: Set<{ ws: WebSocket }> } }).clients.clients].map((c) => c.ws);
  const yieldToSockets = () => new Promise((resolve) => setImmediate(resolve));
  const [reference, pushed] = await measurePair(
    [`bare ws.send of one change to ${CLIENTS} clients`, async () => {
      for (const ws of sockets) { ws.send(points); ws.send(sample); }
      await yieldToSockets();
    }],
    [`pushed change: gather, diff, send to ${CLIENTS} clients`, async () => {
      page.onPack(reading());
      page.refresh();
      await yieldToSockets();
    }],
    quick ? { batches: 3, minBatchMs: 100 } : {},
  );
  console.log(report(reference));
  console.log(report(pushed, reference));
  const perChangeMs = pushed.nsPerOp / 1e6;
  console.log(`per pushed change: ${(perChangeMs * 1000).toFixed(0)} µs (goal < 1 ms) ${perChangeMs < 1 ? 'MET' : 'NOT MET'}; ` +
    `${(pushed.nsPerOp / reference.nsPerOp).toFixed(2)}x sending the same bytes; ${page.clients.dropped} changes coalesced for busy clients`);
  for (const c of clients) c.ws.terminate();
  await page.stop();
  await box.close();

  // ---- the agent's RSS: page open in 5 clients vs page off ----
  const statusPort = await freePort();
  const agent = (name: string, extra: string[]) => {
    const child = spawn(process.execPath, [join(root, 'agent', 'cli.ts'), 'run', '--state-dir', join(dir, name), '--interval', '1000', ...extra], {
      stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, IOP_AGENT_CONFIG: '' },
    });
    children.push(child);
    let log = '';
    child.stderr!.on('data', (c) => (log += c));
    return { child, log: () => log };
  };
  const withPage = agent('page-on', ['--status', `127.0.0.1:${statusPort}`]);
  const without = agent('page-off', []);
  const end = Date.now() + 20_000;
  while (!/status page on/.test(withPage.log())) {
    if (Date.now() > end) throw new Error(`the agent's status page did not start:\n${withPage.log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const open = await Promise.all(Array.from({ length: CLIENTS }, () => openClient(statusPort)));
  let received = 0;
  for (const c of open) c.ws.on('message', () => received++);
  await new Promise((resolve) => setTimeout(resolve, quick ? 3000 : 5000));
  const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  const samples: [number[], number[]] = [[], []];
  for (let i = 0; i < seconds; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    samples[0].push(rssKb(withPage.child.pid!));
    samples[1].push(rssKb(without.child.pid!));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! / 1024;
  const [on, off] = [median(samples[0]), median(samples[1])];
  console.log(`iop-agent run, page open in ${CLIENTS} clients   RSS ${on.toFixed(1).padStart(6)} MB (${received} messages pushed while sampled)`);
  console.log(`iop-agent run, page off                   RSS ${off.toFixed(1).padStart(6)} MB`);
  console.log(`page on - off: ${(on - off).toFixed(1)} MB RSS (goal <= 5 MB) ${on - off <= 5 ? 'MET' : 'NOT MET'}`);
  for (const c of open) c.ws.terminate();
} finally {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((resolve) => c.once('exit', resolve)) : undefined)));
  rmSync(dir, { recursive: true, force: true });
}
