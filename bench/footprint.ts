// Steady-state memory and CPU of `iop-agent run` (4 simulated sensors at 1 Hz,
// connected to Mosquitto, readings acknowledged by the broker) against a bare node
// process of the same runtime doing nothing (`setInterval(() => {}, 1000)`), in one run.
// Measures the single executable from dist/ when it is built (what ships), else the
// agent from source; say which with --source.
// Usage: npm run bench:footprint [-- --seconds S] [--source] [--quick]
//   (--quick: the agent from source, a short start and 3 s of samples, for CI)
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startMosquitto } from '../harness/mosquitto.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, source: { type: 'boolean' }, quick: { type: 'boolean' } } });
const seconds = Number(values.seconds ?? (values.quick ? 3 : 30));
/** start-up and first connection, before sampling */
const startupMs = values.quick ? 3000 : 5000;
const root = join(import.meta.dirname, '..');
const sea = join(root, 'dist', 'iop-agent-linux-x64');
const useSea = !values.source && !values.quick && existsSync(sea);
const CLOCK_TICKS = 100; // USER_HZ on Linux

function sample(pid: number): { rssKb: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssKb, cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

async function observe(name: string, child: ChildProcess, ready: () => Promise<void> = async () => {}): Promise<{ name: string; rssMb: number; cpuPercent: number }> {
  await ready();
  await new Promise((resolve) => setTimeout(resolve, startupMs));
  const first = sample(child.pid!);
  const rss: number[] = [];
  const startMs = Date.now();
  for (let i = 0; i < seconds; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    rss.push(sample(child.pid!).rssKb);
  }
  const last = sample(child.pid!);
  const elapsedS = (Date.now() - startMs) / 1000;
  rss.sort((a, b) => a - b);
  child.kill('SIGTERM');
  return { name, rssMb: rss[Math.floor(rss.length / 2)]! / 1024, cpuPercent: ((last.cpuTicks - first.cpuTicks) / CLOCK_TICKS / elapsedS) * 100 };
}

const broker = await startMosquitto();
const state = mkdtempSync(join(tmpdir(), 'iop-footprint-'));
const children: ChildProcess[] = [];
try {
  const nodeBinary = process.execPath;
  const agentCommand = useSea ? [sea] : [nodeBinary, join(root, 'agent', 'cli.ts')];
  const agent = spawn(agentCommand[0]!, [...agentCommand.slice(1), 'run', '--broker', broker.url, '--state-dir', state, '--interval', '1000'], {
    // glibc's malloc thresholds as the box's init script sets them (S95iop-agent).
    stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, IOP_AGENT_CONFIG: '', MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' },
  });
  let log = '';
  agent.stderr!.on('data', (c) => (log += c));
  const bare = spawn(nodeBinary, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.push(agent, bare);
  // Sampled once connected (a loaded CI machine may take longer than the start-up pause to get there).
  const connected = async () => {
    const deadline = Date.now() + 60_000;
    while (!/connected to/.test(log)) {
      if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`the agent did not connect in 60 s:\n${log}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const [a, b] = await Promise.all([observe(`iop-agent run (${useSea ? 'single executable' : 'from source'})`, agent, connected), observe('bare node setInterval', bare)]);
  for (const m of [a, b]) console.log(`${m.name.padEnd(42)} RSS ${m.rssMb.toFixed(1).padStart(6)} MB   CPU ${m.cpuPercent.toFixed(2).padStart(5)} % of a core`);
  const extraRss = a.rssMb - b.rssMb;
  console.log(`agent - bare: ${extraRss.toFixed(1)} MB RSS (goal <= 15 MB) ${extraRss <= 15 ? 'MET' : 'NOT MET'}; ` +
    `CPU ${a.cpuPercent.toFixed(2)} % of a core (goal <= 1 %) ${a.cpuPercent <= 1 ? 'MET' : 'NOT MET'}`);
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await broker.stop();
  rmSync(state, { recursive: true, force: true });
}
