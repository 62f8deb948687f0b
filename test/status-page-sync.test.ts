// The page's script (agent/status/page/script.ts) keeping in step with the agent
// (docs/status-page.md, The whole state and the changes): the changes that arrive while
// it fetches the whole state wait, and only those numbered after the state count; a sync
// during a fetch fetches again. The script runs in a VM with a stand-in for the few DOM
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
  const timers: (() => void)[] = [];
  const marks: string[] = [];
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  runInNewContext(PAGE_JS, {
    document: { getElementById: element, querySelectorAll: () => [], body: { classList: { remove() {} } }, title: '' },
    location: { protocol: 'http:', host: 'box.local' },
    WebSocket: function WebSocket(this: FakeSocket) {
      this.close = () => this.onclose?.();
      sockets.push(this);
    },
    fetch: (url: string) => new Promise((resolve) => {
      fetches.push({ url, async answer(body, ok = true) { resolve({ ok, status: ok ? 200 : 500, json: async () => body }); await settle(); } });
    }),
    performance: { mark: (name: string) => marks.push(name) },
    requestAnimationFrame: (fn: () => void) => fn(),
    setTimeout: (fn: () => void, ms: number) => (ms === 0 ? fn() : timers.push(fn)),
    setInterval: () => {},
    navigator: {},
    window: {},
  });
  /** To the newest socket, as the agent would send it. */
  const send = (message: unknown) => sockets[sockets.length - 1]!.onmessage!({ data: JSON.stringify(message) });
  /** The timers due (the reconnect's), now. */
  const runTimers = () => { for (const fn of timers.splice(0)) fn(); };
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

test('on sync the page fetches /state.json; changes that came meanwhile count only when numbered after the state', async () => {
  const page = loadPage();
  assert.is(page.fetches.length, 0, 'nothing is fetched before the socket says so');
  page.send({ t: 'sync', seq: 4 });
  assert.equal(page.fetches.map((f) => f.url), ['/state.json']);
  // While the state is on its way: change 5 (already in the state: older than it) and 6 (after it).
  page.send(sensorsChange(5, 99.5));
  page.send(queueChange(6, 60));
  assert.is(page.element('q-waiting').textContent, '', 'nothing is drawn before the state');
  await page.fetches[0]!.answer(wholeState(5, 55, 21.5));
  assert.is(page.element('q-waiting').textContent, '60 readings', 'change 6 applied over the state');
  assert.match(page.element('sensor-rows').innerHTML, /21\.5 Cel/, 'change 5 not applied over the newer state');
  assert.match(page.element('charts').innerHTML, /<path class="line"/);
  assert.equal(page.marks, ['first-state', 'interactive']);
  // From now on changes apply as they come.
  page.send(queueChange(7, 1));
  assert.is(page.element('q-waiting').textContent, '1 reading');
});

test('a state older than the changes already applied is replaced by them; a sync during a fetch fetches again', async () => {
  const page = loadPage();
  page.send({ t: 'sync', seq: 0 });
  await page.fetches[0]!.answer(wholeState(0, 3, 20));
  // The client fell behind: the agent dropped changes for it, then tells it to sync.
  page.send({ t: 'sync', seq: 9 });
  page.send(queueChange(10, 10));
  page.send({ t: 'sync', seq: 12 });
  assert.is(page.fetches.length, 2, 'one fetch at a time');
  assert.is(page.element('q-waiting').textContent, '3 readings', 'changes wait while the state is fetched');
  await page.fetches[1]!.answer(wholeState(9, 9, 20));
  assert.is(page.element('q-waiting').textContent, '10 readings');
  assert.is(page.fetches.length, 3, 'the second sync fetches again');
  page.send(queueChange(13, 13));
  await page.fetches[2]!.answer(wholeState(12, 12, 20));
  assert.is(page.element('q-waiting').textContent, '13 readings');
  assert.equal(page.marks, ['first-state', 'interactive'], 'marked once');
});

test('a failed fetch closes the socket and the page reconnects and syncs again; a late answer for the old socket is not drawn', async () => {
  const page = loadPage();
  page.send({ t: 'sync', seq: 0 });
  await page.fetches[0]!.answer(null, false);
  assert.match(page.element('link-state').textContent, /unreachable/);
  page.runTimers();
  assert.is(page.sockets.length, 2, 'reconnected');
  page.send({ t: 'sync', seq: 0 });
  const late = page.fetches[1]!;
  page.sockets[1]!.close();
  page.runTimers();
  page.send({ t: 'sync', seq: 2 });
  assert.is(page.fetches.length, 2, 'the new socket\'s sync waits for the fetch under way');
  await late.answer(wholeState(0, 3, 20));
  assert.is(page.element('q-waiting').textContent, '', 'the old socket\'s state is not drawn');
  assert.is(page.fetches.length, 3, 'then the new socket\'s sync fetches');
  await page.fetches[2]!.answer(wholeState(2, 4, 20));
  assert.is(page.element('q-waiting').textContent, '4 readings');
});

test('a failed fetch for an old socket neither closes the new one nor loses its sync', async () => {
  const page = loadPage();
  page.send({ t: 'sync', seq: 0 });
  const late = page.fetches[0]!;
  page.sockets[0]!.close();
  page.runTimers();
  page.send({ t: 'sync', seq: 1 });
  await late.answer(null, false);
  page.runTimers();
  assert.is(page.sockets.length, 2, 'the new socket stays');
  assert.is(page.fetches.length, 2, 'the new socket\'s sync fetches');
  await page.fetches[1]!.answer(wholeState(1, 5, 20));
  assert.is(page.element('q-waiting').textContent, '5 readings');
});

test.run();
