// The page's script (agent/status/page/script.ts) keeping in step with the agent
// (docs/status-page.md, The whole state and the changes): it fetches the whole state as
// its socket opens, fetches again when the state is older than the socket's sync says,
// and of the changes that arrive meanwhile applies only those numbered after the state. The script runs in a VM with a stand-in for the few DOM
// parts it touches, so each message and fetch answer comes exactly when the test says.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runInNewContext } from 'node:vm';
import { PAGE_JS } from '../agent/status/page/script.ts';

interface Element { textContent: string; innerHTML: string; className: string; value: number; setAttribute(): void; addEventListener(): void }

interface FakeSocket { onopen?: () => void; onmessage?: (ev: { data: string }) => void; onclose?: () => void; close(): void }

/** The script in a VM; returns its elements by id, its socket, and the fetches it made (answered by the test). */
function loadPage() {
  const elements = new Map<string, Element>();
  const element = (id: string): Element => {
    let el = elements.get(id);
    if (!el) elements.set(id, el = { textContent: '', innerHTML: '', className: '', value: 0, setAttribute() {}, addEventListener() {} });
    return el;
  };
  const sockets: FakeSocket[] = [];
  const fetches: { url: string; answer(body: unknown, ok?: boolean): Promise<void> }[] = [];
  const timers = new Map<number, { fn: () => void; ms: number }>();
  let nextTimer = 1;
  const marks: string[] = [];
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  runInNewContext(PAGE_JS, {
    document: { getElementById: element, querySelectorAll: () => [], body: { classList: { remove() {} } }, title: '' },
    location: { protocol: 'http:', host: 'box.local' },
    WebSocket: function WebSocket(this: FakeSocket) {
      this.close = () => this.onclose?.();
      sockets.push(this);
    },
    fetch: (url: string, init?: { signal?: AbortSignal }) => new Promise((resolve, reject) => {
      init?.signal?.addEventListener('abort', () => reject(new Error('aborted')));
      fetches.push({ url, async answer(body, ok = true) { resolve({ ok, status: ok ? 200 : 500, json: async () => body }); await settle(); } });
    }),
    AbortController,
    performance: { mark: (name: string) => marks.push(name) },
    requestAnimationFrame: (fn: () => void) => fn(),
    setTimeout: (fn: () => void, ms: number) => {
      if (ms === 0) return fn();
      timers.set(nextTimer, { fn, ms });
      return nextTimer++;
    },
    clearTimeout: (id: number) => timers.delete(id),
    setInterval: () => {},
    navigator: {},
    window: {},
  });
  /** To the newest socket, as the agent would send it. */
  const send = (message: unknown) => sockets[sockets.length - 1]!.onmessage!({ data: JSON.stringify(message) });
  /** The reconnect's timers (shorter than the state fetch's 10 s), or with `ms` those of that delay, due now. */
  const runTimers = async (ms?: number) => {
    for (const [id, timer] of [...timers]) {
      if (ms === undefined ? timer.ms >= 10_000 : timer.ms !== ms) continue;
      timers.delete(id);
      timer.fn();
    }
    await settle();
  };
  return { element, sockets, fetches, marks, send, runTimers };
}

const NOW = Date.now();

function wholeState(seq: number, waiting: number, value: number) {
  return {
    seq,
    nowMs: NOW,
    state: {
      box: { device: 'a'.repeat(64), owner: null, version: '0.1.0', startedAtMs: NOW - 60_000, time: { quality: 'ntp', jumps: 0 }, disk: null },
      sensors: [{ name: 'temp', kind: 'simulated/temperature', ok: true, failures: 0, values: [{ name: 'temp', value, unit: 'Cel', atMs: NOW }] }],
      queue: { waiting, oldestStoredMs: null, dropped: 0, head: 0, lastReceiptSeq: null, lastReceiptAtMs: null },
      uplink: { broker: null, connected: false, connectedSinceMs: null, mqttVersion: null, errorsLastHour: 0, viaMesh: null, downSinceMs: null },
      mesh: null,
      problems: [],
    },
    history: { temp: { unit: 'Cel', t0: Math.round(NOW / 100) - 600, dt: [0, 100], v: [value - 1, value] } },
  };
}

const queueChange = (seq: number, waiting: number) => ({ t: 'change', seq, nowMs: NOW, state: { queue: { waiting, oldestStoredMs: null, dropped: 0, head: 0, lastReceiptSeq: null, lastReceiptAtMs: null } } });

const sensorsChange = (seq: number, value: number) => ({ t: 'change', seq, nowMs: NOW, state: { sensors: wholeState(0, 0, value).state.sensors } });

test('the page fetches /state.json as its socket opens; changes that came meanwhile count only when numbered after the state', async () => {
  const page = loadPage();
  assert.equal(page.fetches.map((f) => f.url), ['/state.json'], 'fetched at once, beside the socket');
  page.send({ t: 'sync', seq: 4 });
  assert.is(page.fetches.length, 1, 'the fetch under way may be recent enough');
  // While the state is on its way: change 5 (already in the state: older than it) and 6 (after it).
  page.send(sensorsChange(5, 99.5));
  page.send(queueChange(6, 60));
  assert.is(page.element('q-waiting').textContent, '', 'nothing is drawn before the state');
  await page.fetches[0]!.answer(wholeState(5, 55, 21.5));
  assert.is(page.element('q-waiting').textContent, '60 readings', 'change 6 applied over the state');
  assert.match(page.element('sensor-rows').innerHTML, /21\.5 Cel/, 'change 5 not applied over the newer state');
  assert.match(page.element('charts').innerHTML, /<path class="line"/);
  assert.equal(page.marks, ['first-state', 'interactive']);
  assert.is(page.fetches.length, 1);
  // From now on changes apply as they come.
  page.send(queueChange(7, 1));
  assert.is(page.element('q-waiting').textContent, '1 reading');
});

test('a state older than the socket\'s sync is drawn, then fetched again; the changes wait for the newer one', async () => {
  const page = loadPage();
  // Taken before the socket was registered: changes 4 and 5 may have gone to others only.
  await page.fetches[0]!.answer(wholeState(3, 3, 20));
  assert.is(page.element('q-waiting').textContent, '3 readings', 'drawn at once');
  page.send({ t: 'sync', seq: 5 });
  assert.is(page.fetches.length, 2, 'fetched again');
  page.send(queueChange(6, 6));
  assert.is(page.element('q-waiting').textContent, '3 readings', 'the change waits for the newer state');
  await page.fetches[1]!.answer(wholeState(5, 5, 20));
  assert.is(page.element('q-waiting').textContent, '6 readings');
  assert.equal(page.marks, ['first-state', 'interactive'], 'marked once');
});

test('a state as recent as the sync, come before it, is not fetched again', async () => {
  const page = loadPage();
  await page.fetches[0]!.answer(wholeState(4, 4, 20));
  page.send({ t: 'sync', seq: 4 });
  page.send(queueChange(5, 5));
  assert.is(page.fetches.length, 1);
  assert.is(page.element('q-waiting').textContent, '5 readings');
});

test('after changes were dropped for it, a sync has the page fetch again; a sync during that fetch waits for its answer', async () => {
  const page = loadPage();
  page.send({ t: 'sync', seq: 0 });
  await page.fetches[0]!.answer(wholeState(0, 3, 20));
  page.send({ t: 'sync', seq: 9 });
  page.send(queueChange(10, 10));
  page.send({ t: 'sync', seq: 12 });
  assert.is(page.fetches.length, 2, 'one fetch at a time');
  assert.is(page.element('q-waiting').textContent, '3 readings', 'changes wait while the state is fetched');
  await page.fetches[1]!.answer(wholeState(9, 9, 20));
  assert.is(page.element('q-waiting').textContent, '9 readings', 'the state is drawn, the change waits: the state is older than the last sync');
  assert.is(page.fetches.length, 3, 'the second sync fetches again');
  page.send(queueChange(13, 13));
  await page.fetches[2]!.answer(wholeState(12, 12, 20));
  assert.is(page.element('q-waiting').textContent, '13 readings');
});

test('a failed fetch closes the socket and the page reconnects and fetches again; a late answer for the old socket is not drawn', async () => {
  const page = loadPage();
  await page.fetches[0]!.answer(null, false);
  assert.match(page.element('link-state').textContent, /unreachable/);
  await page.runTimers();
  assert.is(page.sockets.length, 2, 'reconnected');
  assert.is(page.fetches.length, 2, 'and fetching');
  const late = page.fetches[1]!;
  page.sockets[1]!.close();
  await page.runTimers();
  assert.is(page.fetches.length, 3, 'the new socket fetches without waiting for the old one\'s fetch');
  await late.answer(wholeState(0, 3, 20));
  assert.is(page.element('q-waiting').textContent, '', 'the old socket\'s state is not drawn');
  page.send({ t: 'sync', seq: 2 });
  await page.fetches[2]!.answer(wholeState(2, 4, 20));
  assert.is(page.element('q-waiting').textContent, '4 readings');
});

test('a state fetch with no answer in 10 s is given up: the page reconnects and fetches again, and a late answer is not drawn', async () => {
  const page = loadPage();
  const stalled = page.fetches[0]!;
  await page.runTimers(10_000);
  assert.match(page.element('link-state').textContent, /unreachable/, 'the socket was closed');
  await page.runTimers();
  assert.is(page.sockets.length, 2, 'reconnected');
  assert.is(page.fetches.length, 2, 'and fetching again');
  await stalled.answer(wholeState(0, 3, 20));
  assert.is(page.element('q-waiting').textContent, '', 'the given-up state is not drawn');
  await page.fetches[1]!.answer(wholeState(0, 4, 20));
  assert.is(page.element('q-waiting').textContent, '4 readings');
  assert.equal(page.marks, ['first-state', 'interactive']);
  await page.runTimers(10_000);
  assert.is(page.sockets.length, 2, 'an answered fetch leaves no timer to close the socket');
});

test('a failed fetch for an old socket does not close the new one', async () => {
  const page = loadPage();
  const late = page.fetches[0]!;
  page.sockets[0]!.close();
  await page.runTimers();
  await late.answer(null, false);
  await page.runTimers();
  assert.is(page.sockets.length, 2, 'the new socket stays');
  page.send({ t: 'sync', seq: 1 });
  await page.fetches[1]!.answer(wholeState(1, 5, 20));
  assert.is(page.element('q-waiting').textContent, '5 readings');
});

test.run();
