// The status page in a real browser: Debian's Chromium driven by playwright-core (no
// browser download), against three real boxes in network namespaces on UDP mesh links,
// the middle one serving the page, the first one with Mosquitto as its uplink. The page
// shows the device id, every sensor and the neighbour graph, follows new readings without
// a reload, and raises the uplink banner when the broker dies.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runCli, tempDir } from './helpers/cli.ts';
import { startMosquitto, type Broker } from './helpers/mosquitto.ts';
import { makeMesh, meshBoxConfig, netnsUnavailable, type Mesh } from './helpers/netns.ts';
import { deviceId, gatewayKey, inNamespace, start, until, type Running } from './helpers/system.ts';

// What the functions run in the page use of the browser (the project's types have no DOM).
interface PageElement { textContent: string | null; getAttribute(name: string): string | null }
declare const document: { getElementById(id: string): PageElement | null; querySelector(selector: string): PageElement | null; documentElement: { scrollWidth: number } };
declare const window: { innerWidth: number };

const CHROMIUM = '/usr/bin/chromium';
const missing = netnsUnavailable() ?? (existsSync(CHROMIUM) ? undefined : `they need Debian's chromium (${CHROMIUM}; apt-get install chromium)`);
if (missing) process.stdout.write(`status page browser test skipped: ${missing}\n`);
const browserTest = missing ? test.skip : test;

const dir = tempDir();
const running: Running[] = [];
let broker: Broker | undefined;
let mesh: Mesh | undefined;
let closeBrowser: (() => Promise<void>) | undefined;

test.after(async () => {
  await closeBrowser?.().catch(() => {});
  for (const r of running) await r.stop('SIGKILL');
  await broker?.kill().catch(() => {});
  mesh?.remove();
  dir.remove();
});

function withTimeout<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise.finally(() => clearTimeout(timer)), new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); })]);
}

/** A box's config from the mesh helper, with simulated sensors, the status page and a synchronised clock. */
function boxConfig(name: string, i: number, keys: string[], extra: Parameters<typeof meshBoxConfig>[4], more: Record<string, unknown> = {}): string {
  const file = meshBoxConfig(dir.path, name, mesh!.interfaces(i), keys, extra);
  // The clock's marker under a tree of its own: the page shows a synchronised clock.
  const root = join(dir.path, `${name}-root`);
  mkdirSync(join(root, 'run/systemd/timesync'), { recursive: true });
  writeFileSync(join(root, 'run/systemd/timesync/synchronized'), '');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), hardware: { sysfsRoot: root }, ...more }));
  return file;
}

async function meshNode(stateDir: string): Promise<string> {
  const result = await runCli(['mesh', '--json', '--state-dir', stateDir]);
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout.toString()).node;
}

browserTest('the page of a mesh box shows the box, its sensors and neighbours, follows readings live and raises the uplink banner', async () => {
  mesh = makeMesh(3, [[0, 1], [1, 2]]);
  broker = await startMosquitto({ port: 1883, netns: mesh.ns(0) });
  const keys = [await gatewayKey(join(dir.path, 'gateway'))];
  const middle = join(dir.path, 'box1');
  const device = await deviceId(middle);
  const sensors = [
    { type: 'simulated', name: 'temperature', quantity: 'temperature' },
    { type: 'simulated', name: 'humidity', quantity: 'humidity' },
    { type: 'simulated', name: 'pressure', quantity: 'pressure' },
  ];
  const configs = [
    boxConfig('box0', 0, keys, { broker: 'mqtt://127.0.0.1:1883', intervalMs: 5000 }),
    boxConfig('box1', 1, keys, { intervalMs: 1000 }, { sensors, status: { listen: '127.0.0.1:8080', noUplinkAlertS: 3 } }),
    boxConfig('box2', 2, keys, { intervalMs: 5000 }),
  ];
  const boxes = configs.map((config, i) => {
    const r = start(['run', '--config', config], inNamespace(mesh!.ns(i)));
    running.push(r);
    return r;
  });
  await until('the status page listening', () => /status page on http:\/\/127\.0\.0\.1:8080\//.test(boxes[1]!.stderr()), 20_000);
  const nodes = await Promise.all([0, 1, 2].map(async (i) => {
    await until(`box ${i}'s control socket`, async () => (await runCli(['mesh', '--json', '--state-dir', join(dir.path, `box${i}`)])).code === 0, 20_000);
    return meshNode(join(dir.path, `box${i}`));
  }));

  // Chromium runs in the middle box's namespace, where the page listens on loopback.
  const wrapper = join(dir.path, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${mesh.ns(1)} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  const { chromium } = await import('playwright-core');
  const context = await withTimeout('chromium start', chromium.launchPersistentContext(join(dir.path, 'chromium-profile'), {
    executablePath: wrapper,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1100, height: 900 },
  }), 60_000);
  closeBrowser = () => context.close();
  const page = context.pages()[0] ?? await context.newPage();
  // Layout shifts after the first render are counted by Chromium itself.
  await page.addInitScript({ content: `window.__shift = 0;
    new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value; })
      .observe({ type: 'layout-shift', buffered: true });` });
  await page.goto('http://127.0.0.1:8080/');
  await page.evaluate(() => { (window as unknown as { __loaded: boolean }).__loaded = true; });

  // The box
  await page.waitForFunction((id) => document.getElementById('device')?.textContent === id, device, { timeout: 20_000 });
  // Landmarks and names a screen reader finds.
  assert.is(await page.getByRole('main').count(), 1);
  assert.is(await page.getByRole('region', { name: 'Problems' }).count(), 1);
  for (const name of ['Box', 'Sensors', 'Queue', 'Uplink', 'Mesh']) assert.is(await page.getByRole('region', { name }).count(), 1, `section ${name}`);
  // The device id is copyable.
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: 'http://127.0.0.1:8080' });
  await page.click('#copy');
  await page.waitForFunction(() => document.getElementById('copy')?.textContent === 'Copied', undefined, { timeout: 5_000 });
  assert.is(await page.evaluate('navigator.clipboard.readText()'), device);
  assert.match(await page.textContent('#time') ?? '', /synchronised \(ntp\)/);
  assert.match(await page.textContent('#disk') ?? '', /% of/);
  // Each sensor with its value and unit
  for (const s of sensors) {
    await page.waitForFunction((name) => /\d/.test(document.querySelector(`td[data-sensor="${name}"]`)?.textContent ?? ''), s.name, { timeout: 20_000 });
  }
  assert.match(await page.textContent('td[data-sensor="temperature"]') ?? '', /^-?\d+(\.\d+)? Cel$/);
  // The neighbour graph: this box, both neighbours, and the route to the uplink (box 0) highlighted
  await page.waitForFunction((ids) => ids.every((id) => document.querySelector(`svg.graph g[data-node="${id}"]`)), nodes, { timeout: 60_000 });
  await page.waitForSelector('svg.graph line.edge.route', { state: 'attached', timeout: 30_000 });
  assert.is(await page.getByRole('img', { name: /^Mesh: this box and 2 neighbours, route to the uplink via / }).count(), 1);
  assert.match(await page.textContent('#u-state') ?? '', new RegExp(`through the mesh \\(via ${nodes[0]!.slice(0, 8)}\\)`));
  assert.match(await page.textContent('#problems') ?? '', /Healthy/);

  // The first state fills the page at once: loading it moves little.
  const loadShift = await page.evaluate(() => (window as unknown as { __shift: number }).__shift);
  assert.ok(loadShift < 0.1, `layout shift while loading: ${loadShift}`);
  // A new reading shows without a reload (a functional wait, not a timing assertion);
  // from here on, values change and nothing may move.
  await page.evaluate(() => { (window as unknown as { __shift: number }).__shift = 0; });
  const nextReading = async () => {
    const before = await page.getAttribute('td[data-sensor="temperature"] + td', 'data-at');
    await page.waitForFunction((at) => document.querySelector('td[data-sensor="temperature"] + td')?.getAttribute('data-at') !== at, before, { timeout: 10_000 });
  };
  for (let i = 0; i < 3; i++) await nextReading();
  assert.ok(await page.evaluate(() => (window as unknown as { __loaded?: boolean }).__loaded === true), 'the page was not reloaded');
  await page.waitForSelector('figure svg.chart path.line', { state: 'attached', timeout: 10_000 });
  assert.is(await page.locator('#charts figure').count(), sensors.length, 'one chart per quantity');
  const shift = await page.evaluate(() => (window as unknown as { __shift: number }).__shift);
  assert.ok(shift < 0.01, `layout shift while values update: ${shift}`);
  await page.screenshot({ path: join(dir.path, 'status-page-healthy.png'), fullPage: true });
  if (process.env.IOP_SAVE_SCREENSHOT) copyFileSync(join(dir.path, 'status-page-healthy.png'), join(ROOT, 'docs', 'status-page.png'));

  // On a phone: one column, nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scrolling on a phone');
  await page.screenshot({ path: join(dir.path, 'status-page-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1100, height: 900 });

  // The broker dies: box 0 stops offering an uplink, and the banner says so.
  await broker.kill();
  await page.waitForSelector('[data-problem="uplink"]', { state: 'attached', timeout: 60_000 });
  assert.match(await page.textContent('[data-problem="uplink"]') ?? '', /No uplink for .*readings wait on this box/);
  assert.match(await page.textContent('#u-state') ?? '', /no broker configured; no route through the mesh/);
  assert.match(await page.title(), /problem · iop-agent/);
  await page.screenshot({ path: join(dir.path, 'status-page-no-uplink.png'), fullPage: true });
  assert.ok(existsSync(join(dir.path, 'status-page-no-uplink.png')));
  if (process.env.IOP_SAVE_SCREENSHOT) copyFileSync(join(dir.path, 'status-page-no-uplink.png'), join(ROOT, 'docs', 'status-page-no-uplink.png'));
  const html = await page.content();
  assert.not.match(html, /a1a1a1a1a1a1a1a1/, 'the mesh key is not on the page');
});

test.run();
