// iop-agent's mesh against babeld (Debian's, RFC 8966) on the same namespace
// topologies, in one run: an 8-box line and an 8-box ring whose active link is cut
// silently (nftables drops everything at both ends, interfaces stay up, as when a radio
// neighbour fades). Prints cold-start convergence (box 0 has a route to the farthest
// box), failover (box 0 routes round the other way) and control bytes per box per
// second on the wire (Ethernet, IP and UDP headers included), and the ratios.
// Usage: bench/mesh-vs-babeld.sh [--hello S] [--settle S]   (root; babeld and nftables installed)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { askAgent } from '../agent/control-socket.ts';
import { CLI } from '../test/helpers/cli.ts';
import { startMosquitto, type Broker } from '../test/helpers/mosquitto.ts';
import { makeMesh, meshBoxConfig, type Mesh } from '../test/helpers/netns.ts';
import { deviceId } from '../test/helpers/system.ts';

const { values } = parseArgs({ options: { hello: { type: 'string' }, settle: { type: 'string' }, warm: { type: 'string' } } });
const BABEL_HELLO_S = Number(values.hello ?? 1);
/** bytes are counted over this window... */
const SETTLE_S = Number(values.settle ?? 20);
/** ...starting this long after the start, when timers have reached their steady pace */
const WARM_S = Number(values.warm ?? 60);
const N = 8;
/** Ethernet + IPv4 + UDP headers around each of iop-agent's frames on a veth */
const FRAME_OVERHEAD = 14 + 20 + 8;

interface Figures { convergedS: number; failoverS: number | null; bytesPerBoxS: number; dataBytesPerBoxS?: number }

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now() / 1000;

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutS: number): Promise<number> {
  const start = now();
  while (!(await condition())) {
    if (now() - start > timeoutS) throw new Error(`${what}: not within ${timeoutS} s`);
    await sleep(20);
  }
  return now();
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

async function runBabeld(ring: boolean): Promise<Figures> {
  const far = ring ? N / 2 : N - 1;
  const mesh = makeMesh(N, edges(ring));
  const work = mkdtempSync(join(tmpdir(), 'iop-babeld-'));
  const daemons: ChildProcess[] = [];
  try {
    for (let i = 0; i < N; i++) execFileSync('ip', ['-n', mesh.ns(i), 'addr', 'add', `10.255.0.${i + 1}/32`, 'dev', 'lo']);
    await sleep(2500); // IPv6 link-local addresses finish duplicate detection; babeld speaks from them
    const farRoute = () => execFileSync('ip', ['-n', mesh.ns(0), 'route', 'show', `10.255.0.${far + 1}`], { encoding: 'utf8' });
    const start = now();
    for (let i = 0; i < N; i++) {
      daemons.push(spawn('ip', ['netns', 'exec', mesh.ns(i), 'babeld', '-c', '/dev/null', '-I', join(work, `${i}.pid`), '-S', join(work, `${i}.state`),
        '-h', String(BABEL_HELLO_S), '-H', String(BABEL_HELLO_S),
        '-C', 'redistribute local ip 10.255.0.0/24 le 32 allow', '-C', 'redistribute local deny', ...mesh.interfaces(i)], { stdio: 'ignore' }));
    }
    const converged = await until('babeld convergence', () => farRoute().includes('via'), 120);
    await sleep(Math.max(0, start + WARM_S - now()) * 1000);
    const bytes0 = txBytes(mesh);
    const t0 = now();
    await sleep(SETTLE_S * 1000);
    const bytesPerBoxS = (txBytes(mesh) - bytes0) / N / (now() - t0);
    let failoverS: number | null = null;
    if (ring) {
      const dev = /dev (\S+)/.exec(farRoute())![1]!;
      const nextHop = mesh.interfaces(0).indexOf(dev) === 0 ? 1 : N - 1;
      const cutAt = now();
      mesh.cut(0, nextHop);
      const moved = await until('babeld failover', () => {
        const route = farRoute();
        return route.includes('via') && !route.includes(`dev ${dev} `);
      }, 120);
      failoverS = moved - cutAt;
    }
    return { convergedS: converged - start, failoverS, bytesPerBoxS };
  } finally {
    for (const d of daemons) d.kill('SIGTERM');
    await sleep(300);
    mesh.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

interface MeshState { node: string; routes: { dest: string; via: string | null; link: string | null; selected: boolean; total: number }[]; counters: { controlFrames: number; controlBytes: number; dataFrames: number; dataBytes: number; ackFrames: number; ackBytes: number } }

async function runAgent(ring: boolean): Promise<Figures> {
  const far = ring ? N / 2 : N - 1;
  const mesh = makeMesh(N, edges(ring));
  const work = mkdtempSync(join(tmpdir(), 'iop-meshbench-'));
  const agents: ChildProcess[] = [];
  let broker: Broker | undefined;
  try {
    // The farthest box has the uplink (Mosquitto in its namespace); every box announces
    // itself, as every babeld box announces its address; readings flow once a second.
    broker = await startMosquitto({ port: 1883, netns: mesh.ns(far) });
    const farId = (await askFarId(join(work, `box${far}`)));
    const state = (i: number) => join(work, `box${i}`);
    const start = now();
    for (let i = 0; i < N; i++) {
      // No gateway runs here: any key will do (a mesh box must name one).
      const config = meshBoxConfig(work, `box${i}`, mesh.interfaces(i), ['ab'.repeat(32)], {
        intervalMs: 1000, mesh: { announce: 'always' }, uplink: { ack: 'broker' },
        ...(i === far ? { broker: 'mqtt://127.0.0.1:1883' } : {}),
      });
      agents.push(spawn('ip', ['netns', 'exec', mesh.ns(i), process.execPath, CLI, 'run', '--config', config], { stdio: 'ignore', env: { ...process.env, IOP_AGENT_CONFIG: '' } }));
    }
    const status = async (i: number) => {
      try {
        return (await askAgent(state(i), 'mesh', 2000)) as MeshState;
      } catch {
        return undefined;
      }
    };
    const farRoute = async () => (await status(0))?.routes.find((r) => r.selected && r.dest === farId && r.total < 0xffff);
    const converged = await until('iop-agent convergence', async () => !!(await farRoute()), 120);
    await sleep(Math.max(0, start + WARM_S - now()) * 1000);
    const counters = async () => {
      let control = 0;
      let data = 0;
      for (let i = 0; i < N; i++) {
        const c = (await status(i))!.counters;
        control += c.controlBytes + c.controlFrames * FRAME_OVERHEAD;
        data += c.dataBytes + c.ackBytes + (c.dataFrames + c.ackFrames) * FRAME_OVERHEAD;
      }
      return { control, data };
    };
    const c0 = await counters();
    const t0 = now();
    await sleep(SETTLE_S * 1000);
    const c1 = await counters();
    const seconds = now() - t0;
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
      }, 120);
      failoverS = moved - cutAt;
    }
    return { convergedS: converged - start, failoverS, bytesPerBoxS: (c1.control - c0.control) / N / seconds, dataBytesPerBoxS: (c1.data - c0.data) / N / seconds };
  } finally {
    for (const a of agents) a.kill('SIGTERM');
    await sleep(500);
    await broker?.kill();
    mesh.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

/** The mesh node id of a state dir: the first 6 bytes of its public key, in hex. */
async function askFarId(stateDir: string): Promise<string> {
  const id = await deviceId(stateDir);
  const { identityFromId } = await import('../agent/codec/identity.ts');
  return Buffer.from(identityFromId(id).publicKey.subarray(0, 6)).toString('hex');
}

const fmt = (x: number | null, unit: string) => (x === null ? '-' : `${x.toFixed(2)} ${unit}`);
const ratio = (a: number | null, b: number | null) => (a === null || b === null ? '-' : `${(a / b).toFixed(2)}x`);

console.log(`8-box topologies in network namespaces; babeld 1.12 with hello ${BABEL_HELLO_S} s; bytes counted from ${WARM_S} s to ${WARM_S + SETTLE_S} s after the start`);
const results: { name: string; babeld: Figures; agent: Figures }[] = [];
for (const ring of [false, true]) {
  const name = ring ? '8-box ring, active link cut' : '8-box line';
  const babeld = await runBabeld(ring);
  const agent = await runAgent(ring);
  results.push({ name, babeld, agent });
  console.log(`\n${name}`);
  console.log(`                      ${'babeld'.padStart(12)} ${'iop-agent'.padStart(12)}   iop-agent/babeld`);
  console.log(`  converged           ${fmt(babeld.convergedS, 's').padStart(12)} ${fmt(agent.convergedS, 's').padStart(12)}   ${ratio(agent.convergedS, babeld.convergedS)}`);
  console.log(`  failover            ${fmt(babeld.failoverS, 's').padStart(12)} ${fmt(agent.failoverS, 's').padStart(12)}   ${ratio(agent.failoverS, babeld.failoverS)}`);
  console.log(`  control B/box/s     ${fmt(babeld.bytesPerBoxS, '').padStart(12)} ${fmt(agent.bytesPerBoxS, '').padStart(12)}   ${ratio(agent.bytesPerBoxS, babeld.bytesPerBoxS)}`);
  console.log(`  (iop-agent readings and their acks: ${fmt(agent.dataBytesPerBoxS ?? null, 'B/box/s')}, not counted as control)`);
}
const ringResult = results.find((r) => r.name.includes('ring'))!.agent;
const met = ringResult.convergedS < 4 && (ringResult.failoverS ?? Infinity) < 4 && ringResult.bytesPerBoxS <= 60;
console.log(`\ngoal (ring): convergence and failover under 4 s at no more than 60 B/box/s: ${met ? 'MET' : 'NOT MET'}`);
