// The status page's costs, in one run:
//  - first load, for a box with 3 and with 20 quantities: bytes on the wire (gzip) for the
//    page, its assets and the whole state (GET /state.json, with a full hour of chart
//    points), against the 150 KB goal;
//  - interactive: headless Chromium (Debian's, via playwright-core; skipped when absent)
//    loads the page with a cold cache several times; the page's own Performance marks
//    say when the first state was drawn and the page was free again after that frame,
//    from navigation start, against the 1 s goal and against a static page of the same
//    size from a bare node:http server; a load not interactive in 15 s is printed with
//    what the page did, counted (the goal is then not met) and loaded again once;
//  - per pushed change (a reading: gather the state, find what changed, send it to 5
//    open pages read by another process): the agent process's CPU time per change
//    (process.cpuUsage), against the 1 ms goal and against sending the same bytes to the
//    same 5 clients with no gathering (the reference);
//  - the agent's RSS with the page open in 5 clients against the same agent, page off.
// Usage: node bench/status-page.ts [--quick] [--seconds S]
//   (--quick: short batches, 3 loads and 3 s of RSS samples, for CI)
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { openBox, type Box } from '../agent/box.ts';
import { validateConfig } from '../agent/config/load.ts';
import { silentLogger } from '../agent/log.ts';
import { PAGE_ASSETS } from '../agent/status/page/assets.ts';
import { startStatusPage, type StatusPage } from '../agent/status/service.ts';
import { freePort } from '../harness/mosquitto.ts';
import { SIMULATED_QUANTITIES } from '../sensors/simulated.ts';
import { report, type Measurement } from './measure.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, seconds: { type: 'string' }, 'clients-of': { type: 'string' } } });
const quick = values.quick ?? false;
const seconds = Number(values.seconds ?? (quick ? 3 : 20));
const root = join(import.meta.dirname, '..');
const CLIENTS = 5;
const FIRST_LOAD_GOAL = 150 * 1024;
const INTERACTIVE_GOAL_MS = 1000;
const LOAD_TIMEOUT_MS = 15_000;
const CHROMIUM = '/usr/bin/chromium';
const PATHS = ['/', '/app.css', '/app.js', '/state.json'];

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

/** A page's client: the socket, its first message (the sync) and, as the page does, the whole state. */
async function openClient(port: number): Promise<{ ws: WebSocket; syncBytes: number }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });
  const syncBytes = await new Promise<number>((resolve, reject) => {
    ws.once('message', (data: Buffer) => resolve(data.length));
    ws.once('error', reject);
  });
  await (await fetch(`http://127.0.0.1:${port}/state.json`)).arrayBuffer();
  return { ws, syncBytes };
}

// ---- --clients-of PORT: the 5 pages' sockets, in a process of their own ----
if (values['clients-of'] !== undefined) {
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => openClient(Number(values['clients-of']))));
  let received = 0;
  for (const { ws } of clients) ws.on('message', () => received++);
  process.stdout.write('ready\n');
  process.stdin.resume();
  process.stdin.on('end', () => {
    process.stdout.write(`received ${received}\n`);
    for (const { ws } of clients) ws.terminate();
  });
} else {
  await main();
}

/** A box with `count` simulated quantities, its page, and an hour of charts (one reading every 10 s). */
async function boxWithPage(dir: string, count: number): Promise<{ box: Box; page: StatusPage }> {
  const sensors = Array.from({ length: count }, (_, i) => {
    const quantity = SIMULATED_QUANTITIES[i % SIMULATED_QUANTITIES.length]!;
    return { type: 'simulated', name: count <= SIMULATED_QUANTITIES.length ? quantity : `${quantity}-${i}`, quantity };
  });
  const config = validateConfig({ stateDir: join(dir, `quantities-${count}`), sensors }, 'bench');
  const box = await openBox(config, silentLogger);
  const page = await startStatusPage({ address: { host: '127.0.0.1', port: 0 }, box, broker: null, uplink: undefined, mesh: () => undefined, stateDir: config.stateDir, log: silentLogger, refreshEveryMs: 3_600_000 });
  const hourAgoS = Date.now() / 1000 - 3600;
  // Sensor values with noise at 6 significant digits: what gzip gets from a real box.
  for (let i = 0; i < 360; i++) page.onPack({ time: hourAgoS + i * 10, records: box.sensors.map((s, k) => ({ n: s.name, u: 'Cel', v: 20 + k + Math.sin(i / 20) * 3 + Math.random() / 10 })) });
  return { box, page };
}

/** The bytes of the first load, on the wire and as the browser has them (uncompressed). */
async function firstLoad(port: number, count: number, syncBytes: number): Promise<{ wire: number; raw: number }> {
  const [html, css, js, state] = await Promise.all(PATHS.map((p) => wireBytes(port, p)));
  const wire = html! + css! + js! + state! + syncBytes;
  const rawState = (await (await fetch(`http://127.0.0.1:${port}/state.json`)).arrayBuffer()).byteLength;
  const raw = [...PAGE_ASSETS.values()].reduce((sum, a) => sum + Buffer.byteLength(a.body), 0) + rawState;
  console.log(`first load, ${String(count).padStart(2)} quantities: page ${html} B, css ${css} B, js ${js} B, whole state with an hour of charts ${state} B (${rawState} B uncompressed): ` +
    `${(wire / 1024).toFixed(1)} KB (goal <= 150 KB) ${wire <= FIRST_LOAD_GOAL ? 'MET' : 'NOT MET'}`);
  return { wire, raw };
}

/** A static page of `bytes` bytes that marks 'interactive' the way the status page does, after its first frame. */
async function referenceServer(bytes: number): Promise<{ url: string; close(): Promise<void> }> {
  const head = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>reference</title></head><body><h1>reference</h1>';
  const tail = "<script>performance.mark('first-state');requestAnimationFrame(function(){setTimeout(function(){performance.mark('interactive')},0)})</script></body></html>";
  // Filler text the parser reads as paragraphs, not one comment it can skip. Whole lines
  // only, then plain text: a paragraph cut inside its tag ('</', '<p') would swallow the
  // script after it (the bench hung on about 1 run in 10 that way).
  const line = '<p>The quick brown fox jumps over the lazy dog 0123456789.</p>\n';
  const room = Math.max(0, bytes - head.length - tail.length);
  const filler = line.repeat(Math.floor(room / line.length)) + 'x'.repeat(room % line.length);
  const body = Buffer.from(head + filler + tail);
  const server = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': body.length }).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

interface Browser { newContext(): Promise<{ newPage(): Promise<BrowserPage>; close(): Promise<void> }>; close(): Promise<void> }
interface BrowserPage {
  goto(url: string): Promise<unknown>;
  waitForFunction(fn: () => boolean, arg?: unknown, options?: { timeout: number }): Promise<unknown>;
  evaluate<T>(fn: () => T): Promise<T>;
  on(event: 'pageerror', listener: (error: Error) => void): void;
  on(event: 'console', listener: (message: { type(): string; text(): string }) => void): void;
  on(event: 'response', listener: (response: { url(): string; status(): number; headers(): Record<string, string> }) => void): void;
  content(): Promise<string>;
  on(event: 'request' | 'requestfailed', listener: (request: { url(): string; failure(): { errorText: string } | null }) => void): void;
  on(event: 'websocket', listener: (ws: { url(): string; on(event: 'framereceived', listener: (frame: { payload: string | Buffer }) => void): void; on(event: 'close', listener: () => void): void }) => void): void;
}

/**
 * Milliseconds from navigation start to the page's 'interactive' mark, one cold load (a
 * fresh context) each. A load still not interactive after 15 s is printed with what the
 * page did (requests, socket frames, errors, performance entries), counted, and loaded
 * again once: two such loads in a row end the bench.
 */
async function interactiveMs(browser: Browser, url: string, loads: number): Promise<{ times: number[]; hung: number }> {
  const times: number[] = [];
  let hung = 0;
  for (let i = 0; i < loads; i++) {
    const first = await oneLoad(browser, url);
    if (typeof first === 'number') { times.push(first); continue; }
    hung++;
    console.error(`load ${i + 1} of ${url} was not interactive in ${LOAD_TIMEOUT_MS / 1000} s, loading it again: ${first.hung}`);
    const again = await oneLoad(browser, url);
    if (typeof again !== 'number') throw new Error(`load ${i + 1} of ${url} was not interactive in ${LOAD_TIMEOUT_MS / 1000} s twice in a row: ${again.hung}`);
    times.push(again);
  }
  return { times: times.sort((a, b) => a - b), hung };
}

async function oneLoad(browser: Browser, url: string): Promise<number | { hung: string }> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    // What the page did, kept to explain a load that never becomes interactive.
    const said: string[] = [];
    const started = Date.now();
    const at = () => `${Date.now() - started} ms`;
    page.on('pageerror', (e) => said.push(`${at()} page error: ${e.message}`));
    page.on('console', (m) => said.push(`${at()} console ${m.type()}: ${m.text()}`));
    page.on('request', (r) => said.push(`${at()} request ${r.url()}`));
    page.on('response', (r) => said.push(`${at()} response ${r.status()} ${r.headers()['content-type'] ?? ''} ${r.url()}`));
    page.on('requestfailed', (r) => said.push(`${at()} request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
    page.on('websocket', (ws) => {
      said.push(`${at()} socket ${ws.url()}`);
      ws.on('framereceived', (f) => said.push(`${at()} socket frame ${String(f.payload).slice(0, 40)}`));
      ws.on('close', () => said.push(`${at()} socket closed`));
    });
    await page.goto(url);
    try {
      // Functions, not strings: the page's Content-Security-Policy forbids eval.
      await page.waitForFunction(() => performance.getEntriesByName('interactive').length > 0, undefined, { timeout: LOAD_TIMEOUT_MS });
    } catch (error) {
      const entries = await page.evaluate(() => performance.getEntries().map((e) => `${e.entryType} ${e.name} ${Math.round(e.startTime)}`).join('; ')).catch(() => '?');
      const document = await page.content().then((html) => JSON.stringify(html.slice(0, 300)), () => '?');
      return { hung: `${(error as Error).message.split('\n')[0]}; performance entries: ${entries}; what happened: ${said.join(' | ') || 'nothing'}; the document: ${document}` };
    }
    return await page.evaluate(() => performance.getEntriesByName('interactive')[0]!.startTime);
  } finally {
    await context.close();
  }
}

/** The agent process's CPU (user + system) per operation over one batch, in ns, each op followed by a pause for the clients to read. */
async function cpuBatch(op: () => void, size: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < size; i++) {
    op();
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) * 1000 / size;
}

/** CPU per op of two operations in alternating batches (a load change hits both alike); the median batch each. */
async function cpuPair(reference: [string, () => void], candidate: [string, () => void], batches: number, size: number): Promise<[Measurement, Measurement]> {
  const samples: [number[], number[]] = [[], []];
  await cpuBatch(reference[1], size);
  await cpuBatch(candidate[1], size);
  for (let b = 0; b < batches; b++) {
    samples[0].push(await cpuBatch(reference[1], size));
    samples[1].push(await cpuBatch(candidate[1], size));
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  return [reference, candidate].map(([name], i) => ({ name, nsPerOp: median(samples[i]!), opsPerSecond: 1e9 / median(samples[i]!) })) as [Measurement, Measurement];
}

/** The agent's CPU per pushed change to 5 clients in another process, against sending the same bytes. */
async function pushCost(box: Box, page: StatusPage): Promise<void> {
  const clientsProcess = spawn(process.execPath, [join(root, 'bench', 'status-page.ts'), '--clients-of', String(page.address().port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    let clientsOut = '';
    clientsProcess.stdout!.on('data', (c) => (clientsOut += c));
    const until = Date.now() + 30_000;
    while (!clientsOut.includes('ready')) {
      if (Date.now() > until || clientsProcess.exitCode !== null) throw new Error(`the clients' process did not connect: ${clientsOut}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    let n = 0;
    const reading = () => ({ time: Date.now() / 1000, records: box.sensors.map((s, i) => ({ n: s.name, u: 'Cel', v: 20 + i + (n++ % 1000) / 100 })) });
    // The reference sends what one change sends (a points and a change message) to the same clients.
    const sample = JSON.stringify({ t: 'change', seq: 1, nowMs: Date.now(), state: { sensors: box.sensors.map((s) => ({ name: s.name, kind: s.kind, ok: true, failures: 0, values: [{ name: s.name, value: 20.5, unit: 'Cel', atMs: Date.now() }] })) } });
    const points = JSON.stringify({ t: 'points', seq: 2, points: box.sensors.map((s) => [s.name, 'Cel', Date.now(), 20.5]) });
    const sockets = [...(page as unknown as { clients: { clients: Set<{ ws: WebSocket }> } }).clients.clients].map((c) => c.ws);
    if (sockets.length !== CLIENTS) throw new Error(`${sockets.length} clients connected, expected ${CLIENTS}`);
    const droppedBefore = page.clients.dropped;
    const count = box.sensors.length;
    const [reference, pushed] = await cpuPair(
      [`bare ws.send of one change to ${CLIENTS} clients (${count})`, () => { for (const ws of sockets) { ws.send(points); ws.send(sample); } }],
      [`pushed change, ${String(count).padStart(2)} quantities: gather, diff, send`, () => { page.onPack(reading()); page.refresh(); }],
      quick ? 3 : 9, quick ? 200 : 1000,
    );
    // What the 1 ms pause between changes costs by itself (timer, event loop), counted in both.
    const pause = await cpuBatch(() => {}, quick ? 200 : 1000);
    console.log(report(reference));
    console.log(report(pushed, reference));
    const perChangeMs = pushed.nsPerOp / 1e6;
    console.log(`agent CPU per pushed change, ${String(count).padStart(2)} quantities: ${(perChangeMs * 1000).toFixed(0)} µs (goal < 1 ms) ${perChangeMs < 1 ? 'MET' : 'NOT MET'}; ` +
      `${(pushed.nsPerOp / reference.nsPerOp).toFixed(2)}x sending the same bytes; the pause between changes alone ${(pause / 1000).toFixed(0)} µs; ${page.clients.dropped - droppedBefore} changes coalesced for busy clients`);
  } finally {
    // Its stdin ending closes its clients; one stuck connecting is killed.
    clientsProcess.stdin!.end();
    if (clientsProcess.exitCode === null) {
      const kill = setTimeout(() => clientsProcess.kill('SIGKILL'), 5000);
      await new Promise((resolve) => clientsProcess.once('exit', resolve));
      clearTimeout(kill);
    }
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iop-status-bench-'));
  const children: ChildProcess[] = [];
  const pages: { box: Box; page: StatusPage }[] = [];
  let browser: Browser | undefined;
  try {
    // ---- first load and interactive, with 3 and 20 quantities ----
    const loads = quick ? 3 : 9;
    if (existsSync(CHROMIUM)) {
      const { chromium } = await import('playwright-core');
      // A fresh profile (Playwright's own temporary user-data-dir) and a new context per load: a cold cache.
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      }) as unknown as Browser;
    } else {
      console.log(`interactive: skipped: needs Debian's chromium (${CHROMIUM}; apt-get install chromium)`);
    }
    for (const count of [3, 20]) {
      const { box, page } = await boxWithPage(dir, count);
      pages.push({ box, page });
      const port = page.address().port;
      const probe = await openClient(port);
      const bytes = await firstLoad(port, count, probe.syncBytes);
      probe.ws.terminate();
      if (!browser) continue;
      const reference = await referenceServer(bytes.raw);
      try {
        const { times: agent, hung } = await interactiveMs(browser, `http://127.0.0.1:${port}/`, loads);
        const { times: bare } = await interactiveMs(browser, reference.url, loads);
        const median = (xs: number[]) => xs[Math.floor(xs.length / 2)]!;
        const worst = agent[agent.length - 1]!;
        console.log(`interactive, ${String(count).padStart(2)} quantities: median ${median(agent).toFixed(0)} ms, worst ${worst.toFixed(0)} ms of ${loads} cold loads` +
          `${hung ? ` (and ${hung} more not interactive in ${LOAD_TIMEOUT_MS / 1000} s, loaded again: see stderr)` : ''} (goal < 1 s) ${worst < INTERACTIVE_GOAL_MS && hung === 0 ? 'MET' : 'NOT MET'}; ` +
          `static page of ${(bytes.raw / 1024).toFixed(0)} KB from bare node:http: median ${median(bare).toFixed(0)} ms, ratio ${(median(agent) / median(bare)).toFixed(2)}x`);
      } finally {
        await reference.close();
      }
    }
    await browser?.close();
    browser = undefined;

    // ---- the agent's CPU per pushed change, the 5 clients in another process ----
    console.log(`agent CPU (process.cpuUsage) per change, ${CLIENTS} clients reading in another process:`);
    for (const { box, page } of pages) await pushCost(box, page);
    for (const p of pages.splice(0)) {
      await p.page.stop();
      await p.box.close();
    }

    // ---- the agent's RSS: page open in 5 clients vs page off ----
    // What a box runs: the single executable when it is built (npm run build), else the
    // agent from source (which holds every module's source too, so it reads higher).
    const executable = join(root, 'dist', `iop-agent-${process.platform}-${process.arch}`);
    const built = existsSync(executable);
    const command = built ? [executable] : [process.execPath, join(root, 'agent', 'cli.ts')];
    const agent = (name: string, extra: string[]) => {
      const child = spawn(command[0]!, [...command.slice(1), 'run', '--state-dir', join(dir, name), '--interval', '1000', ...extra], {
        // As the box's init script and unit run it: glibc hands freed memory back.
        stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, IOP_AGENT_CONFIG: '', MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' },
      });
      children.push(child);
      let log = '';
      child.stderr!.on('data', (c) => (log += c));
      return { child, log: () => log };
    };
    const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    /** Resident kB by kind of mapping (/proc/PID/smaps): where a difference lies. */
    const residentByKind = (pid: number) => {
      const kinds = { executable: 0, malloc: 0, anonymous: 0, other: 0 };
      let kind: keyof typeof kinds = 'other';
      for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
        const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
        if (mapping) {
          const name = mapping[1]!;
          kind = name === command[0] ? 'executable' : name === '[heap]' ? 'malloc' : name === '' ? 'anonymous' : 'other';
        } else if (line.startsWith('Rss:')) {
          kinds[kind] += Number(/(\d+)/.exec(line)![1]);
        }
      }
      return kinds;
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // Two processes differ by a megabyte or two whatever they do: several pairs, the median.
    const differences: number[] = [];
    let on = 0;
    let off = 0;
    let received = 0;
    let byKind = '';
    for (let pair = 0; pair < (quick ? 1 : 3); pair++) {
      const statusPort = await freePort();
      const withPage = agent(`page-on-${pair}`, ['--status', `127.0.0.1:${statusPort}`]);
      const without = agent(`page-off-${pair}`, []);
      const end = Date.now() + 20_000;
      while (!/status page on/.test(withPage.log())) {
        if (Date.now() > end) throw new Error(`the agent's status page did not start:\n${withPage.log()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const open = await Promise.all(Array.from({ length: CLIENTS }, () => openClient(statusPort)));
      for (const c of open) c.ws.on('message', () => received++);
      await new Promise((resolve) => setTimeout(resolve, quick ? 3000 : 5000));
      const samples: [number[], number[]] = [[], []];
      for (let i = 0; i < seconds; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        samples[0].push(rssKb(withPage.child.pid!));
        samples[1].push(rssKb(without.child.pid!));
      }
      [on, off] = [median(samples[0]) / 1024, median(samples[1]) / 1024];
      differences.push(on - off);
      const [kindsOn, kindsOff] = [residentByKind(withPage.child.pid!), residentByKind(without.child.pid!)];
      byKind = (Object.keys(kindsOn) as (keyof typeof kindsOn)[]).map((k) => `${k} ${((kindsOn[k] - kindsOff[k]) / 1024).toFixed(1)}`).join(', ');
      for (const c of open) c.ws.terminate();
      withPage.child.kill('SIGTERM');
      without.child.kill('SIGTERM');
    }
    const difference = median(differences);
    console.log(`agent measured: ${built ? `the single executable ${executable}` : 'from source (no executable built: npm run build)'}`);
    console.log(`iop-agent run, page open in ${CLIENTS} clients   RSS ${on.toFixed(1).padStart(6)} MB (last pair; ${received} messages pushed while sampled)`);
    console.log(`iop-agent run, page off                   RSS ${off.toFixed(1).padStart(6)} MB (last pair)`);
    console.log(`page on - off by kind of mapping (last pair, MB): ${byKind} (executable: its pages read, the built-in modules' code and source among them; malloc: the C heap; anonymous: V8's heap and the rest)`);
    console.log(`page on - off: ${difference.toFixed(1)} MB RSS, median of ${differences.length} pairs (${differences.map((d) => d.toFixed(1)).join(', ')}) (goal <= 5 MB) ${difference <= 5 ? 'MET' : 'NOT MET'}`);
  } finally {
    await browser?.close().catch(() => {});
    for (const p of pages) {
      await p.page.stop();
      await p.box.close();
    }
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((resolve) => c.once('exit', resolve)) : undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
}
