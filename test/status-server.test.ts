// The status page's server on a real box (in this process): gzip-compressed assets and
// whole state (a first load under 150 KB with 20 charted quantities), basic auth, extra routes, read-only; the WebSocket survives 100 clients coming and
// going, a paused client costs a flag and not a growing queue, and a broken or unwanted
// frame closes only its own client.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebSocket } from 'ws';
import { openBox, type Box } from '../agent/box.ts';
import { validateConfig } from '../agent/config/load.ts';
import { silentLogger } from '../agent/log.ts';
import { PAGE_ASSETS } from '../agent/status/page/assets.ts';
import { startStatusPage, type StatusPage } from '../agent/status/service.ts';
import { runCli, tempDir } from './helpers/cli.ts';
import { freePort } from './helpers/mosquitto.ts';
import { start, until } from './helpers/system.ts';

const dir = tempDir();
const PASSWORD = 'correct horse battery staple';
let box: Box;
let page: StatusPage;
let base: string;

function withTimeout<T>(what: string, promise: Promise<T>, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise.finally(() => clearTimeout(timer)), new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); })]);
}

const auth = { Authorization: `Basic ${Buffer.from(`tech:${PASSWORD}`).toString('base64')}` };

test.before(async () => {
  const passwordFile = join(dir.path, 'status-password');
  writeFileSync(passwordFile, `${PASSWORD}\n`);
  const config = validateConfig({
    stateDir: join(dir.path, 'state'),
    sensors: [{ type: 'simulated', name: 'temp', quantity: 'temperature' }],
  }, 'test');
  box = await openBox(config, silentLogger);
  const routes = new Map([['/extra', (_req: unknown, res: { end(text: string): void }) => res.end('extra route\n')]]);
  page = await startStatusPage({ address: { host: '127.0.0.1', port: 0 }, password: passwordFile, box, broker: null, uplink: undefined, mesh: () => undefined, stateDir: config.stateDir, log: silentLogger, extraRoutes: routes as never });
  base = `127.0.0.1:${page.address().port}`;
});

test.after(async () => {
  await page?.stop();
  await box?.close();
  dir.remove();
});

test('the page and its assets come gzip-compressed, under 150 KB in all, and need the password', async () => {
  const unauthorized = await fetch(`http://${base}/`);
  assert.is(unauthorized.status, 401);
  assert.match(unauthorized.headers.get('www-authenticate') ?? '', /^Basic /);
  const wrong = await fetch(`http://${base}/`, { headers: { Authorization: `Basic ${Buffer.from('tech:nope').toString('base64')}` } });
  assert.is(wrong.status, 401);
  let total = 0;
  for (const path of ['/', '/app.js', '/app.css']) {
    // fetch() would decompress: read the bytes on the wire with node:http semantics instead
    const bytes = await rawGet(path, { ...auth, 'Accept-Encoding': 'gzip' });
    assert.is(bytes.status, 200, path);
    assert.is(bytes.headers['content-encoding'], 'gzip', path);
    total += bytes.body.length;
    assert.ok(gunzipSync(bytes.body).length > bytes.body.length, `${path} is compressed`);
  }
  assert.ok(total < 150 * 1024, `the page's files ${total} bytes`);
  // ASCII (other characters escaped): V8 keeps such a string in one byte a character, not two.
  for (const [path, { body }] of PAGE_ASSETS) assert.ok(/^[\x00-\x7f]*$/.test(body), `${path} has a character beyond ASCII: ${/[^\x00-\x7f]/.exec(body)?.[0]}`);
  const html = await (await fetch(`http://${base}/`, { headers: auth })).text();
  assert.match(html, /<main>/);
  assert.match(html, /src="\/app\.js"/);
});

test('a first load with 20 quantities charted over an hour stays under 150 KB: the whole state comes gzip-compressed', async () => {
  // A page of its own, so that its 20 charts stay out of the other tests' state.
  const big = await startStatusPage({ address: { host: '127.0.0.1', port: 0 }, box, broker: null, uplink: undefined, mesh: () => undefined, stateDir: dir.path, log: silentLogger });
  try {
    const hourAgoS = Date.now() / 1000 - 3600;
    for (let i = 0; i < 360; i++) {
      big.onPack({ time: hourAgoS + i * 10, records: Array.from({ length: 20 }, (_, k) => ({ n: `q${k}`, u: 'Cel', v: 20 + k + Math.sin(i / 20) * 3 + Math.random() })) });
    }
    let total = 0;
    for (const path of ['/', '/app.js', '/app.css', '/state.json']) {
      const bytes = await rawGet(path, { 'Accept-Encoding': 'gzip' }, `127.0.0.1:${big.address().port}`);
      assert.is(bytes.status, 200, path);
      assert.is(bytes.headers['content-encoding'], 'gzip', path);
      total += bytes.body.length;
    }
    const state = JSON.parse(gunzipSync((await rawGet('/state.json', { 'Accept-Encoding': 'gzip' }, `127.0.0.1:${big.address().port}`)).body).toString());
    assert.is(Object.keys(state.history).length, 20);
    assert.ok(state.history.q7.v.length >= 350, `points of q7: ${state.history.q7.v.length}`);
    assert.ok(total < 150 * 1024, `first load ${total} bytes`);
  } finally {
    await big.stop();
  }
});

test('the page is read-only and serves the routes its caller adds, behind the same auth', async () => {
  assert.is((await fetch(`http://${base}/`, { method: 'POST', headers: auth, body: 'x' })).status, 405);
  assert.is((await fetch(`http://${base}/nothing`, { headers: auth })).status, 404);
  assert.is((await fetch(`http://${base}/extra`)).status, 401);
  assert.is(await (await fetch(`http://${base}/extra`, { headers: auth })).text(), 'extra route\n');
});

function rawGet(path: string, headers: Record<string, string>, host = base): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  return withTimeout(`GET ${path}`, new Promise((resolve, reject) => {
    import('node:http').then(({ get }) => {
      get(`http://${host}${path}`, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers as Record<string, string>, body: Buffer.concat(chunks) }));
      }).on('error', reject);
    }, reject);
  }));
}

/** A WebSocket client with the password; resolves with its first message (the sync). */
function client(): Promise<{ ws: WebSocket; first: { t: string; seq: number } }> {
  const ws = new WebSocket(`ws://${base}/ws`, { headers: auth, perMessageDeflate: false });
  return withTimeout('sync', new Promise((resolve, reject) => {
    ws.once('message', (data) => resolve({ ws, first: JSON.parse(String(data)) }));
    ws.once('error', reject);
  }));
}

/** The HTTP status a refused WebSocket handshake got. */
function refusal(ws: WebSocket): Promise<number> {
  ws.on('error', () => {});
  return withTimeout('refusal', new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => {
    resolve(res.statusCode!);
    res.destroy();
  })));
}

const closed = (ws: WebSocket) => new Promise<number>((resolve) => ws.readyState === ws.CLOSED ? resolve(0) : ws.once('close', (code) => resolve(code)));

test('a WebSocket needs the password and the same origin; it is told to sync, and the whole state (behind the password) is numbered', async () => {
  assert.is(await refusal(new WebSocket(`ws://${base}/ws`)), 401);
  assert.is(await refusal(new WebSocket(`ws://${base}/ws`, { headers: auth, origin: 'http://evil.example' })), 403);
  const { ws, first } = await client();
  assert.is(first.t, 'sync');
  assert.is((await fetch(`http://${base}/state.json`)).status, 401);
  const response = await fetch(`http://${base}/state.json`, { headers: auth });
  assert.is(response.headers.get('cache-control'), 'no-store');
  const whole = await response.json() as { seq: number; nowMs: number; state: { box: { device: string }; sensors: { name: string }[] } };
  // The state is at least as recent as the socket's sync: nothing falls between them.
  assert.ok(whole.seq >= first.seq, `state ${whole.seq}, sync ${first.seq}`);
  assert.is(whole.state.box.device, box.identity.id);
  assert.equal(whole.state.sensors.map((s) => s.name), ['temp']);
  assert.not.match(JSON.stringify(whole), /BEGIN|PRIVATE|secret|correct horse/i);
  // What changes after it is numbered after it.
  const got: { seq: number }[] = [];
  ws.on('message', (d) => got.push(JSON.parse(String(d))));
  page.onPack({ time: Date.now() / 1000, records: [{ n: 'temp', u: 'Cel', v: 19.5 }] });
  await waitFor('a numbered point', () => got.length > 0);
  assert.is(got[0]!.seq, whole.seq + 1);
  ws.close();
  await closed(ws);
});

test('the whole state is never newer than the changes numbered before it: a value that changes and changes back reaches the page', async () => {
  const { ws } = await client();
  try {
    const got: { t: string; seq: number; state?: { sensors?: { values: { value: number }[] }[] } }[] = [];
    ws.on('message', (d) => got.push(JSON.parse(String(d))));
    const before = { time: Date.now() / 1000 - 5, records: [{ n: 'temp', u: 'Cel', v: 1.25 }] };
    page.onPack(before);
    page.refresh();
    // Asked for before the next refresh looks at it.
    page.onPack({ time: Date.now() / 1000, records: [{ n: 'temp', u: 'Cel', v: 2.5 }] });
    const whole = await (await fetch(`http://${base}/state.json`, { headers: auth })).json() as { seq: number; state: { sensors: { values: { value: number }[] }[] } };
    assert.is(whole.state.sensors[0]!.values[0]!.value, 2.5);
    page.onPack(before);
    page.refresh();
    await waitFor('the value back, numbered after the state', () => got.some((m) => m.seq > whole.seq && m.state?.sensors?.[0]!.values[0]!.value === 1.25));
  } finally {
    ws.close();
    await closed(ws);
  }
});

test('100 clients connect and leave: nothing is left behind', async () => {
  const before = await connections();
  const all = await Promise.all(Array.from({ length: 100 }, () => client()));
  assert.is(page.clients.size, 100);
  await Promise.all(all.map(({ ws }) => { ws.close(); return closed(ws); }));
  // half of the next 100 vanish without a closing handshake
  const again = await Promise.all(Array.from({ length: 100 }, () => client()));
  await Promise.all(again.map(({ ws }, i) => { if (i % 2) ws.terminate(); else ws.close(); return closed(ws); }));
  await waitFor('every client gone on the server', () => page.clients.size === 0);
  await waitFor('every socket closed', async () => (await connections()) === before);
});

const connections = () => page.connections();

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A raw TCP client that completes the WebSocket handshake and then reads nothing. */
function rawClient(): Promise<Socket> {
  return withTimeout('raw handshake', new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: page.address().port });
    socket.once('error', reject);
    socket.write(`GET /ws HTTP/1.1\r\nHost: ${base}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: ${auth.Authorization}\r\n\r\n`);
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.pause();
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(head.split('\r\n')[0]));
      else resolve(socket);
    };
    socket.on('data', onData);
  }));
}

// Memory is compared after a full collection: garbage is not what a queue would hold.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
// Buffers are freed by finalizers after a collection: settle, then collect again.
const retained = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const m = process.memoryUsage();
  return m.arrayBuffers + m.heapUsed;
};

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('a paused client does not grow the server\'s memory: changes for it are dropped, then it is told to sync', async () => {
  const slow = await rawClient();
  const { ws: fast } = await client();
  let fastGot = 0;
  fast.on('message', () => fastGot++);
  const change = JSON.stringify({ t: 'change', nowMs: 0, state: { filler: 'x'.repeat(32 * 1024) } });
  const droppedBefore = page.clients.dropped;
  const before = await retained();
  // 3000 changes of 32 KB: 96 MB that a queue per client would have to hold for the paused one
  let backlog = 0;
  for (let i = 0; i < 3000; i++) {
    page.clients.send(change);
    backlog = Math.max(backlog, page.clients.backlog());
    if (i % 20 === 0) await tick();
  }
  await waitFor('the fast client read every change', () => fastGot >= 3000, 60_000);
  const grown = (await retained() - before) / 1e6;
  assert.ok(page.clients.dropped - droppedBefore > 2000, `changes dropped for the paused client: ${page.clients.dropped - droppedBefore}`);
  assert.ok(backlog <= 64 * 1024 + change.length + 100, `at most one change above the threshold queued for a client: ${backlog} bytes`);
  assert.ok(grown < 16, `memory grew ${grown.toFixed(1)} MB for 96 MB of changes`);
  // Reading again, the slow client is told to fetch the whole state.
  const received: Buffer[] = [];
  slow.on('data', (c: Buffer) => received.push(c));
  slow.resume();
  await waitFor('a sync after the backlog', () => Buffer.concat(received).includes('"t":"sync"', Math.max(0, Buffer.concat(received).length - 200_000)), 20_000);
  slow.destroy();
  fast.close();
  await closed(fast);
});

test('a malformed frame closes only its own client; a message from a client closes only that one', async () => {
  const { ws: bystander } = await client();
  const got: string[] = [];
  bystander.on('message', (d) => got.push(String(d)));
  const bad = await rawClient();
  const badClosed = new Promise<void>((resolve) => bad.once('close', () => resolve()));
  bad.resume();
  // an unmasked frame with a reserved opcode: a protocol error from a client
  bad.write(Buffer.from([0x83, 0x02, 0x68, 0x69]));
  await withTimeout('the bad client closed', badClosed);
  const { ws: chatty } = await client();
  chatty.send('{"please":"change something"}');
  assert.is(await withTimeout('the chatty client closed', closed(chatty)), 1008);
  page.clients.send(JSON.stringify({ t: 'change', nowMs: 0, state: { ping: 1 } }));
  await waitFor('the bystander still gets changes', () => got.some((m) => m.includes('"ping":1')));
  assert.is(bystander.readyState, bystander.OPEN);
  bystander.close();
  await closed(bystander);
});

test('a sampled reading reaches the open page as a change of the sensors and a chart point', async () => {
  const { ws } = await client();
  const got: { t: string; state?: { sensors?: { values: { value: number }[] }[] }; points?: unknown[][] }[] = [];
  ws.on('message', (d) => got.push(JSON.parse(String(d))));
  page.onPack({ time: Date.now() / 1000, records: [{ n: 'temp', u: 'Cel', v: 21.5 }] });
  await waitFor('the point and the change', () => got.some((m) => m.t === 'points') && got.some((m) => m.t === 'change' && m.state?.sensors !== undefined));
  assert.equal(got.find((m) => m.t === 'points')!.points![0]!.slice(0, 2), ['temp', 'Cel']);
  assert.is(got.find((m) => m.state?.sensors)!.state!.sensors![0]!.values[0]!.value, 21.5);
  // A stored reading shows in the queue: waiting, and since when.
  const stored = await box.record({ time: Date.now() / 1000, records: [{ n: 'temp', u: 'Cel', v: 21.6 }] });
  page.refresh();
  const queued = () => got.map((m) => (m.state as { queue?: { waiting: number; head: number; oldestStoredMs: number } } | undefined)?.queue).filter(Boolean).pop();
  await waitFor('the queue change', () => queued()?.head === stored.seq);
  assert.ok(queued()!.waiting >= 1);
  assert.ok(Math.abs(queued()!.oldestStoredMs - Date.now()) < 60_000, 'the oldest reading waits since just now');
  ws.close();
  await closed(ws);
});

test('a bad listen address is refused naming status.listen or --status; a port in use and a missing password file are named', async () => {
  assert.throws(() => validateConfig({ status: { listen: '8080' } }, 'test'), /status\.listen: expected host:port/);
  assert.throws(() => validateConfig({ status: { listen: '127.0.0.1:70000' } }, 'test'), /status\.listen: expected a port from 0 to 65535/);
  const bad = await runCli(['run', '--state-dir', join(dir.path, 'bad-flag'), '--status', 'nope']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--status expects host:port, e\.g\. .*got 'nope'/);
  const common = { box, broker: null, uplink: undefined, mesh: () => undefined, stateDir: dir.path, log: silentLogger };
  try {
    await startStatusPage({ ...common, address: { host: '127.0.0.1', port: page.address().port } });
    assert.unreachable('the port is in use');
  } catch (err) {
    assert.match(String(err), new RegExp(`status page: cannot listen on 127\\.0\\.0\\.1:${page.address().port}: EADDRINUSE`));
  }
  try {
    await startStatusPage({ ...common, address: { host: '127.0.0.1', port: 0 }, password: join(dir.path, 'missing') });
    assert.unreachable('no password file');
  } catch (err) {
    assert.match(String(err), /status\.password file .*missing: ENOENT/);
  }
});

test('run --status and --metrics on one address: the page and /metrics from one server', async () => {
  const port = await freePort();
  const agent = start(['run', '--state-dir', join(dir.path, 'with-metrics'), '--interval', '500', '--status', `127.0.0.1:${port}`, '--metrics', `127.0.0.1:${port}`]);
  try {
    await until('the status page', () => /status page on/.test(agent.stderr()), 20_000);
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.is(metrics.status, 200);
    assert.match(await metrics.text(), /^iop_agent_/m);
    assert.match(await (await fetch(`http://127.0.0.1:${port}/`)).text(), /<main>/);
    assert.not.match(agent.stderr(), /EADDRINUSE/);
  } finally {
    await agent.stop();
  }
});

test.run();
