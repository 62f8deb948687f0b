import { askAgent } from '../control-socket.ts';
import { CONFIG_HELP, CONFIG_OPTIONS, type Command } from '../command.ts';
import { configFromFlags } from './options.ts';

interface MeshStatus {
  enabled?: false;
  node: string;
  announcing: string;
  via: string | null;
  links: { name: string; address: string; txFrames: number; rxFrames: number }[];
  neighbours: { node: string; link: string; address: string; cost: number; rxcost: number; txcost: number; heardMsAgo: number; rssi?: number; snr?: number }[];
  routes: { dest: string; uplink: boolean; seqno: number; metric: number; via: string | null; link: string | null; total: number; selected: boolean }[];
  receipts?: { accepted: number; refused: Record<string, number> };
}

const INFINITE = 0xffff;
const cost = (c: number) => (c >= INFINITE ? 'down' : (c / 256).toFixed(2));

export const meshCommand: Command = {
  name: 'mesh',
  summary: 'show the running agent\'s mesh: neighbours with link cost (ETX, 1.00 is perfect), and routes',
  usage: 'iop-agent mesh [--state-dir DIR] [--json]',
  help: `      --json            the whole mesh state as one JSON object\n${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS, json: { type: 'boolean' } },
  async run(context) {
    const { config } = configFromFlags(context);
    const status = (await askAgent(config.stateDir, 'mesh')) as MeshStatus;
    if (context.values.json) {
      context.stdout.write(`${JSON.stringify(status)}\n`);
      return 0;
    }
    if (status.enabled === false) {
      context.stdout.write('mesh not enabled on this box (mesh.enabled in the config)\n');
      return 0;
    }
    const out: string[] = [`node ${status.node}  announcing: ${status.announcing}  readings via: ${status.via ?? (status.announcing === 'uplink' ? 'own uplink' : 'none')}`];
    out.push('', 'neighbours:');
    if (!status.neighbours.length) out.push('  (none heard)');
    for (const n of status.neighbours) {
      const signal = n.rssi !== undefined ? `  rssi ${n.rssi} dBm snr ${n.snr} dB` : '';
      out.push(`  ${n.node}  ${n.link} ${n.address}  cost ${cost(n.cost)} (in ${cost(n.rxcost)}, out ${cost(n.txcost)})  heard ${(n.heardMsAgo / 1000).toFixed(1)} s ago${signal}`);
    }
    out.push('', 'routes:');
    if (!status.routes.length) out.push('  (none)');
    for (const r of status.routes) {
      out.push(`  ${r.selected ? '*' : ' '} ${r.dest}${r.uplink ? ' (uplink)' : ''}  via ${r.via ?? '-'} on ${r.link ?? '-'}  metric ${cost(r.total)}  seqno ${r.seqno}`);
    }
    if (status.receipts) {
      const refused = Object.entries(status.receipts.refused).filter(([, n]) => n > 0).map(([why, n]) => `${why} ${n}`);
      out.push('', `receipts: ${status.receipts.accepted} accepted, refused: ${refused.length ? refused.join(', ') : 'none'}`);
    }
    context.stdout.write(`${out.join('\n')}\n`);
    return 0;
  },
};
