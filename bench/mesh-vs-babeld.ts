// iop-agent's mesh against babeld (Debian's, RFC 8966) on the same namespace
// topologies, in one run: an 8-box line and an 8-box ring whose active link is cut
// silently (nftables drops everything at both ends, interfaces stay up, as when a radio
// neighbour fades). Prints cold-start convergence (box 0 has a route to the farthest
// box), failover (box 0 routes round the other way) and control bytes per box per
// second, and the ratios.
//
// Both sides' bytes come from the same place: the veths' tx_bytes, over a window in
// which only routing traffic flows (each mesh box has readings queued before it starts;
// they cross the mesh to a real gateway, whose receipts empty every queue, before the
// window opens, and no new reading is made during the run). The agent's own counters
// plus Ethernet, IP and UDP headers are printed beside them as a cross-check.
//
// The mesh boxes run as they would in the field: `uplink.ack: gateway` with the
// gateway's public key configured, Mosquitto and `iop-agent gateway` in the namespace
// of the farthest box. Every child's stdout and stderr go to a log that is printed when
// a run fails.
//
// Usage: npm run bench:mesh [-- --quick] [--hello S] [--settle S] [--warm S]
//   (root; babeld, nftables, iproute2 and mosquitto installed)
//   --quick: a 3-box line with short windows, for CI; skips with a message when the
//   machine lacks root or a tool.
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { askAgent } from '../agent/control-socket.ts';
import { startMosquitto, type Broker } from '../harness/mosquitto.ts';
import { makeMesh, type Mesh } from '../test/helpers/netns.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, hello: { type: 'string' }, settle: { type: 'string' }, warm: { type: 'string' } } });
const QUICK = values.quick === true;
const BABEL_HELLO_S = Number(values.hello ?? 1);
/** bytes are counted over this window... */
const SETTLE_S = Number(values.settle ?? (QUICK ? 3 : 20));
/** ...starting this long after the start, when timers have reached their steady pace */
const WARM_S = Number(values.warm ?? (QUICK ? 4 : 60));
const N = QUICK ? 3 : 8;
const TOPOLOGIES: { name: string; ring: boolean }[] = QUICK
  ? [{ name: `${N}-box line`, ring: false }]
  : [{ name: `${N}-box line`, ring: false }, { name: `${N}-box ring, active link cut`, ring: true }];
/** readings each box has queued before it starts, delivered through the mesh before the byte window */
const QUEUED = 2;
/** Ethernet + IPv4 + UDP headers around each of iop-agent's frames on a veth (the cross-check) */
const FRAME_OVERHEAD = 14 + 20 + 8;
const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'agent', 'cli.ts');
const AGENT_ENV = { ...process.env, IOP_AGENT_CONFIG: '' };

interface Figures {
  /** from spawning the processes until every one of them runs (babeld: wrote its pid file; iop-agent: answers on its control socket) */
  upS: number;
  /** from spawning until box 0 has a route to the farthest box */
  convergedS: number;
  failoverS: number | null; bytesPerBoxS: number; ownCountersPerBoxS?: number; deliveredS?: number;
  /** iop-agent's control TLVs sent in the byte window, by type, summed over the boxes */
  tlvsInWindow?: Record<string, number> }

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now() / 1000;

/** Polls until the condition holds; fails at the timeout, or at once when one of `children` has exited. */
async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutS: number, children: Children): Promise<number> {
  const start = now();
  while (!(await condition())) {
    if (now() - start > timeoutS) throw new Error(`${what}: not within ${timeoutS} s`);
    const gone = children.exited();
    if (gone.length) throw new Error(`${what}: ${gone.join(', ')} exited`);
    await sleep(20);
  }
  return now();
}

/** What this machine lacks to run the bench, or null. */
function missing(): string | null {
  if (process.getuid?.() !== 0) return 'root (network namespaces)';
  const tools = ['babeld', 'nft', 'ip', 'mosquitto'].filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  return tools.length ? `${tools.join(', ')} (apt-get install babeld nftables iproute2 mosquitto)` : null;
}

/** Child processes whose stdout and stderr go to one log file each, printed when a run fails. */
class Children {
  readonly dir: string;
  private readonly running: { name: string; child: ChildProcess; log: string }[] = [];

  constructor(dir: string) {
    this.dir = dir;
  }

  spawn(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const log = join(this.dir, `${name}.log`);
    const fd = openSync(log, 'a');
    const child = spawn(command, args, { stdio: ['ignore', fd, fd], env });
    closeSync(fd);
    child.on('exit', (code, signal) => writeFileSync(log, `[bench] ${name} exited: ${signal ?? `code ${code}`}\n`, { flag: 'a' }));
    this.running.push({ name, child, log });
    return child;
  }

  /** Names of the children that are no longer running (none should be, before stop()). */
  exited(): string[] {
    return this.running.filter(({ child }) => child.exitCode !== null || child.signalCode !== null).map(({ name }) => name);
  }

  /** The last lines of every child's log, for a failed run. */
  logs(lines = 30): string {
    return this.running.map(({ name, log }) => {
      let text = '';
      try {
        text = readFileSync(log, 'utf8');
      } catch { /* never written */ }
      const tail = text.trimEnd().split('\n').slice(-lines).map((l) => `    ${l}`).join('\n');
      return `  --- ${name} (${log}) ---\n${tail || '    (empty)'}`;
    }).join('\n');
  }

  async stop(): Promise<void> {
    const alive = this.running.filter(({ child }) => child.exitCode === null && child.signalCode === null);
    await Promise.all(alive.map(({ child }) => new Promise<void>((resolve) => {
      const force = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill('SIGTERM');
    })));
  }
}

/** Runs one side of the comparison with its namespaces, children and logs, all removed after; a failure shows the logs. */
async function withTopology(label: string, ring: boolean, run: (mesh: Mesh, children: Children, work: string) => Promise<Figures>): Promise<Figures> {
  const mesh = makeMesh(N, edges(ring));
  const work = mkdtempSync(join(tmpdir(), 'iop-meshbench-'));
  const children = new Children(work);
  try {
    return await run(mesh, children, work);
  } catch (err) {
    throw new Error(`${label}: ${(err as Error).message}\nlogs of its processes:\n${children.logs()}`);
  } finally {
    await children.stop();
    mesh.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

function txBytes(mesh: Mesh): number {
  let total = 0;
  for (let i = 0; i < N; i++) {
    for (const dev of mesh.interfaces(i)) {
      total += Number(execFileSync('ip', ['netns', 'exec', mesh.ns(i), 'cat', `/sys/class/net/${dev}/statistics/tx_bytes`], { encoding: 'utf8' }));
    }
  }
  return total;
}

function edges(ring: boolean): [number, number][] {
  const e: [number, number][] = Array.from({ length: N - 1 }, (_, i) => [i, i + 1]);
  if (ring) e.push([N - 1, 0]);
  return e;
}

const farthest = (ring: boolean) => (ring ? Math.floor(N / 2) : N - 1);

/** Waits until `start + WARM_S`, then counts bytes per box per second over SETTLE_S. */
async function steadyBytes<T>(start: number, sample: () => Promise<T>, perBoxS: (before: T, after: T, seconds: number) => number): Promise<number> {
  await sleep(Math.max(0, start + WARM_S - now()) * 1000);
  const before = await sample();
  const t0 = now();
  await sleep(SETTLE_S * 1000);
  const after = await sample();
  return perBoxS(before, after, now() - t0);
}

async function runBabeld(ring: boolean): Promise<Figures> {
  const far = farthest(ring);
  return withTopology('babeld', ring, async (mesh, children, work) => {
    for (let i = 0; i < N; i++) execFileSync('ip', ['-n', mesh.ns(i), 'addr', 'add', `10.255.0.${i + 1}/32`, 'dev', 'lo']);
    await sleep(2500); // IPv6 link-local addresses finish duplicate detection; babeld speaks from them
    const farRoute = () => execFileSync('ip', ['-n', mesh.ns(0), 'route', 'show', `10.255.0.${far + 1}`], { encoding: 'utf8' });
    const start = now();
    for (let i = 0; i < N; i++) {
      children.spawn(`babeld${i}`, 'ip', ['netns', 'exec', mesh.ns(i), 'babeld', '-c', '/dev/null', '-I', join(work, `${i}.pid`), '-S', join(work, `${i}.state`),
        '-h', String(BABEL_HELLO_S), '-H', String(BABEL_HELLO_S),
        '-C', 'redistribute local ip 10.255.0.0/24 le 32 allow', '-C', 'redistribute local deny', ...mesh.interfaces(i)]);
    }
    const up = await until('every babeld running', () => Array.from({ length: N }, (_, i) => existsSync(join(work, `${i}.pid`))).every(Boolean), 60, children);
    const converged = await until('babeld convergence', () => farRoute().includes('via'), 60, children);
    const bytesPerBoxS = await steadyBytes(start, async () => txBytes(mesh), (a, b, s) => (b - a) / N / s);
    let failoverS: number | null = null;
    if (ring) {
      const dev = /dev (\S+)/.exec(farRoute())![1]!;
      const nextHop = mesh.interfaces(0).indexOf(dev) === 0 ? 1 : N - 1;
      const cutAt = now();
      mesh.cut(0, nextHop);
      const moved = await until('babeld failover', () => {
        const route = farRoute();
        return route.includes('via') && !route.includes(`dev ${dev} `);
      }, 60, children);
      failoverS = moved - cutAt;
    }
    return { upS: up - start, convergedS: converged - start, failoverS, bytesPerBoxS };
  });
}

interface Counters { controlFrames: number; controlBytes: number }
interface MeshState { node: string; routes: { dest: string; link: string | null; selected: boolean; total: number }[]; counters: Counters; controlTlvs: Record<string, number> }

/** The mesh node id of a device's public key: its first 6 bytes, in hex. */
const nodeIdOf = (publicKeyHex: string) => publicKeyHex.slice(0, 12);

async function cli(args: string[]): Promise<string> {
  return (await promisify(execFile)(process.execPath, [CLI, ...args], { encoding: 'utf8', env: AGENT_ENV })).stdout;
}

async function publicKeyOf(stateDir: string): Promise<string> {
  const { publicKey } = JSON.parse(await cli(['id', '--json', '--state-dir', stateDir])) as { publicKey: string };
  return publicKey;
}

/** A mesh box as in the field: links, the shared key, gateway receipts from a configured gateway key. */
function boxConfig(work: string, i: number, interfaces: string[], gatewayKey: string, broker: string | null): string {
  const keyFile = join(work, 'mesh.key');
  writeFileSync(keyFile, `${'a1'.repeat(32)}\n`, { mode: 0o600 });
  const file = join(work, `box${i}.json`);
  writeFileSync(file, JSON.stringify({
    stateDir: join(work, `box${i}`),
    sampling: { intervalMs: 86_400_000 }, // no new reading during the run: only routing traffic in the byte window
    uplink: { broker, ack: 'gateway', gatewayKeys: [gatewayKey], reconnectMinMs: 100, reconnectMaxMs: 500 },
    mesh: { enabled: true, keyFile, announce: 'always', receiptHoldMs: 1000, ackTimeoutMs: 3000, links: interfaces.map((dev) => ({ type: 'udp', interface: dev })) },
  }));
  return file;
}

async function runAgent(ring: boolean): Promise<Figures> {
  const far = farthest(ring);
  return withTopology('iop-agent', ring, async (mesh, children, work) => {
    const state = (i: number) => join(work, `box${i}`);
    // The farthest box has the uplink: Mosquitto and the gateway in its namespace. Every
    // box announces itself, as every babeld box announces its address.
    const broker: Broker = await startMosquitto({ port: 1883, netns: mesh.ns(far) });
    try {
      const url = 'mqtt://127.0.0.1:1883';
      const gatewayDir = join(work, 'gateway');
      const gatewayKey = await publicKeyOf(gatewayDir);
      children.spawn('gateway', 'ip', ['netns', 'exec', mesh.ns(far), process.execPath, CLI, 'gateway', '--broker', url, '--state-dir', gatewayDir, '--allow-any'], AGENT_ENV);
      const ids = await Promise.all(Array.from({ length: N }, async (_, i) => {
        await cli(['sample', '--count', String(QUEUED), '--out', '/dev/null', '--state-dir', state(i)]);
        return nodeIdOf(await publicKeyOf(state(i)));
      }));
      const start = now();
      for (let i = 0; i < N; i++) {
        const config = boxConfig(work, i, mesh.interfaces(i), gatewayKey, i === far ? url : null);
        children.spawn(`box${i}`, 'ip', ['netns', 'exec', mesh.ns(i), process.execPath, CLI, 'run', '--config', config], AGENT_ENV);
      }
      const ask = async <T>(i: number, what: string): Promise<T | undefined> => {
        try {
          return (await askAgent(state(i), what, 2000)) as T;
        } catch {
          return undefined;
        }
      };
      /** an answer that must come: a box busy on a loaded machine may miss one request */
      const mustAsk = async <T>(i: number, what: string): Promise<T> => {
        for (let attempt = 0; attempt < 5; attempt++) {
          const answer = await ask<T>(i, what);
          if (answer !== undefined) return answer;
        }
        throw new Error(`box ${i} does not answer '${what}' on its control socket`);
      };
      const farRoute = async () => (await ask<MeshState>(0, 'mesh'))?.routes.find((r) => r.selected && r.dest === ids[far] && r.total < 0xffff);
      const up = await until('every agent answering on its control socket', async () => (await Promise.all(Array.from({ length: N }, (_, i) => ask(i, 'status')))).every(Boolean), 60, children);
      const converged = await until('iop-agent convergence', async () => !!(await farRoute()), 60, children);
      // Every box's queued readings cross the mesh and come back as gateway receipts.
      const queues = async () => Promise.all(Array.from({ length: N }, async (_, i) => (await ask<{ queue: { stored: number } }>(i, 'status'))?.queue.stored ?? -1));
      const delivered = await until(`every box's ${QUEUED} queued readings acknowledged by gateway receipts`, async () => (await queues()).every((n) => n === 0), 60, children);
      const sample = async () => {
        const states = await Promise.all(Array.from({ length: N }, async (_, i) => mustAsk<MeshState>(i, 'mesh')));
        const tlvs: Record<string, number> = {};
        for (const s of states) for (const [t, n] of Object.entries(s.controlTlvs)) tlvs[t] = (tlvs[t] ?? 0) + n;
        return { wire: txBytes(mesh), own: states.reduce((sum, { counters: c }) => sum + c.controlBytes + c.controlFrames * FRAME_OVERHEAD, 0), tlvs };
      };
      let ownCountersPerBoxS = 0;
      let tlvsInWindow: Record<string, number> = {};
      const bytesPerBoxS = await steadyBytes(start, sample, (a, b, s) => {
        ownCountersPerBoxS = (b.own - a.own) / N / s;
        tlvsInWindow = Object.fromEntries(Object.entries(b.tlvs).map(([t, n]) => [t, n - (a.tlvs[t] ?? 0)]));
        return (b.wire - a.wire) / N / s;
      });
      let failoverS: number | null = null;
      if (ring) {
        const route = (await farRoute())!;
        const link = route.link!.replace('udp:', '');
        const nextHop = mesh.interfaces(0).indexOf(link) === 0 ? 1 : N - 1;
        const cutAt = now();
        mesh.cut(0, nextHop);
        const moved = await until('iop-agent failover', async () => {
          const r = await farRoute();
          return !!r && r.link !== route.link;
        }, 60, children);
        failoverS = moved - cutAt;
      }
      return { upS: up - start, convergedS: converged - start, failoverS, bytesPerBoxS, ownCountersPerBoxS, deliveredS: delivered - start, tlvsInWindow };
    } finally {
      await children.stop();
      await broker.kill();
    }
  });
}

const fmt = (x: number | null | undefined, unit = '') => (x === null || x === undefined ? '-' : `${x.toFixed(2)}${unit ? ` ${unit}` : ''}`);
const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? '-' : `${(a / b).toFixed(2)}x`);

const lacking = missing();
if (lacking) {
  console.log(`bench/mesh-vs-babeld.ts: ${QUICK ? 'skipped' : 'cannot run'}: needs ${lacking}`);
  process.exit(QUICK ? 0 : 2);
}

const version = spawnSync('babeld', ['-V'], { encoding: 'utf8' });
const babeldVersion = `${version.stdout}${version.stderr}`.trim() || 'babeld';
console.log(`${N}-box topologies in network namespaces; ${babeldVersion} with hello ${BABEL_HELLO_S} s; bytes from the veths' counters, ${WARM_S} s to ${WARM_S + SETTLE_S} s after the start`);
const results: { name: string; ring: boolean; babeld: Figures; agent: Figures }[] = [];
try {
  for (const { name, ring } of TOPOLOGIES) {
    const babeld = await runBabeld(ring);
    const agent = await runAgent(ring);
    results.push({ name, ring, babeld, agent });
    console.log(`\n${name}`);
    console.log(`                      ${'babeld'.padStart(12)} ${'iop-agent'.padStart(12)}   iop-agent/babeld`);
    const afterUp = (f: Figures) => Math.max(0, f.convergedS - f.upS);
    console.log(`  processes running   ${fmt(babeld.upS, 's').padStart(12)} ${fmt(agent.upS, 's').padStart(12)}   (after the spawn)`);
    console.log(`  converged           ${fmt(babeld.convergedS, 's').padStart(12)} ${fmt(agent.convergedS, 's').padStart(12)}   ratio ${ratio(agent.convergedS, babeld.convergedS)} (after the spawn)`);
    console.log(`  converged once up   ${fmt(afterUp(babeld), 's').padStart(12)} ${fmt(afterUp(agent), 's').padStart(12)}   ratio ${ratio(afterUp(agent), afterUp(babeld))} (after every process runs)`);
    console.log(`  failover            ${fmt(babeld.failoverS, 's').padStart(12)} ${fmt(agent.failoverS, 's').padStart(12)}   ratio ${ratio(agent.failoverS, babeld.failoverS)}`);
    console.log(`  control B/box/s     ${fmt(babeld.bytesPerBoxS).padStart(12)} ${fmt(agent.bytesPerBoxS).padStart(12)}   ratio ${ratio(agent.bytesPerBoxS, babeld.bytesPerBoxS)}`);
    console.log(`  (iop-agent's own control counters plus ${FRAME_OVERHEAD} B of headers a frame: ${fmt(agent.ownCountersPerBoxS)} B/box/s; ` +
      `${N * QUEUED} queued readings acknowledged by gateway receipts ${fmt(agent.deliveredS, 's')} after the start)`);
    console.log(`  (iop-agent's control TLVs in the byte window, all boxes: ${Object.entries(agent.tlvsInWindow ?? {}).map(([t, n]) => `${t} ${n}`).join(', ')})`);
  }
} catch (err) {
  console.error(`bench/mesh-vs-babeld.ts: ${(err as Error).message}`);
  process.exit(1);
}
const goal = results.find((r) => r.ring) ?? results[0]!;
const a = goal.agent;
const met = a.convergedS - a.upS < 4 && (goal.ring ? (a.failoverS ?? Infinity) < 4 : true) && a.bytesPerBoxS <= 60;
console.log(`\ngoal (${goal.name}): convergence once up${goal.ring ? ' and failover' : ''} under 4 s at no more than 60 B/box/s: ${met ? 'MET' : 'NOT MET'}`);
