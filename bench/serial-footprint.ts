// Resident memory of `iop-agent run` with two open serial radio links (an emulated
// RNode and an emulated REYAX modem on socat ptys) against the same agent with its mesh
// on a UDP link only, measured in the same run. Goal: at most +5 MB.
// Usage: node bench/serial-footprint.ts [--quick]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Channel } from '../test/emulators/channel.ts';
import { ReyaxModem, RNodeModem } from '../test/emulators/modems.ts';
import { tempDir } from '../test/helpers/cli.ts';
import { kissLink, radioBoxConfig, reyaxLink } from '../test/helpers/radio-mesh.ts';
import { start, until, type Running } from '../test/helpers/system.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const settleMs = values.quick ? 6000 : 30_000;
const samples = values.quick ? 3 : 10;
const dir = tempDir('iop-bench-serial-');
const channel = new Channel();
const running: Running[] = [];
const KEY = '00'.repeat(32);

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

async function measure(name: string, links: object[], ready: RegExp[]): Promise<number> {
  const box = start(['run', '--config', radioBoxConfig(dir.path, name, links, { gatewayKey: KEY, intervalMs: 1000 })]);
  running.push(box);
  await until(`${name} ready`, () => ready.every((r) => r.test(box.stderr())), 30_000);
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    values.push(rssMb(box.child.pid!));
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await box.stop();
  return values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

try {
  const paths = [join(dir.path, 'rnode'), join(dir.path, 'rylr')];
  await channel.add(paths[0]!, 0, () => new RNodeModem());
  await channel.add(paths[1]!, 500, () => new ReyaxModem());
  channel.connect();
  const udp = { type: 'udp', interface: 'lo', port: 20000 + Math.floor(Math.random() * 40000) };
  const reference = await measure('udp-only', [udp], [/mesh node/]);
  const serial = await measure('two-serial', [udp, kissLink(paths[0]!), reyaxLink(paths[1]!)], [/RNode configured/, /REYAX modem configured/]);
  console.log('serial-footprint: median RSS of iop-agent run (from source), same run');
  console.log(`  mesh on UDP only              ${reference.toFixed(1)} MB`);
  console.log(`  plus two open serial links    ${serial.toFixed(1)} MB`);
  console.log(`  difference                    ${(serial - reference).toFixed(1)} MB (goal: at most +5 MB), ratio ${(serial / reference).toFixed(3)}`);
} finally {
  for (const r of running) await r.stop('SIGKILL');
  await channel.close();
  dir.remove();
}
