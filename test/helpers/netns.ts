// Boxes in network namespaces joined by veth pairs: each box a real `iop-agent run`
// process that sees only its own links. Names carry the test process id so parallel
// test files never share a namespace; everything is removed at the end.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Mesh {
  ns(i: number): string;
  /** interfaces of box i, in the order its links were made */
  interfaces(i: number): string[];
  /** the veth of box a that faces box b */
  facing(a: number, b: number): string;
  /** Drops every packet on the a-b link at both ends, interfaces staying up (a neighbour that faded). */
  cut(a: number, b: number): void;
  remove(): void;
}

export const MESH_KEY = 'a1'.repeat(32);

/** Why namespace tests cannot run here (they need root and iproute2), or undefined if they can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'they need root (network namespaces and veth pairs)';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return "they need iproute2's ip with netns support";
  }
  return undefined;
}
const TAG = String(process.pid % 100_000);

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** n namespaces and a veth pair for each [a, b] in `edges`, addressed 10.<edge>.0.1-2/30. */
let made = 0;

export function makeMesh(n: number, edges: [number, number][]): Mesh {
  const tag = `${TAG}${String.fromCharCode(97 + (made++ % 26))}`;
  const ns = (i: number) => `iop${tag}n${i}`;
  const names = new Map<string, string>();
  const interfaces: string[][] = Array.from({ length: n }, () => []);
  try {
    for (let i = 0; i < n; i++) {
      ip('netns', 'add', ns(i));
      ip('-n', ns(i), 'link', 'set', 'lo', 'up');
    }
    edges.forEach(([a, b], e) => {
      const ia = `v${tag}e${e}a`;
      const ib = `v${tag}e${e}b`;
      ip('link', 'add', ia, 'netns', ns(a), 'type', 'veth', 'peer', 'name', ib, 'netns', ns(b));
      ip('-n', ns(a), 'addr', 'add', `10.${e + 1}.0.1/30`, 'dev', ia);
      ip('-n', ns(b), 'addr', 'add', `10.${e + 1}.0.2/30`, 'dev', ib);
      ip('-n', ns(a), 'link', 'set', ia, 'up');
      ip('-n', ns(b), 'link', 'set', ib, 'up');
      names.set(`${a}-${b}`, ia);
      names.set(`${b}-${a}`, ib);
      interfaces[a]!.push(ia);
      interfaces[b]!.push(ib);
    });
  } catch (err) {
    removeAll(n, ns);
    throw err;
  }
  const mesh: Mesh = {
    ns,
    interfaces: (i) => interfaces[i]!,
    facing(a, b) {
      const name = names.get(`${a}-${b}`);
      if (!name) throw new Error(`no link between box ${a} and box ${b}`);
      return name;
    },
    cut(a, b) {
      for (const [x, y] of [[a, b], [b, a]] as const) {
        const dev = mesh.facing(x, y);
        const rules = [
          `table netdev cut_${dev} {`,
          `  chain in { type filter hook ingress device "${dev}" priority 0; policy drop; }`,
          `  chain out { type filter hook egress device "${dev}" priority 0; policy drop; }`,
          '}',
        ].join('\n');
        execFileSync('ip', ['netns', 'exec', ns(x), 'nft', '-f', '-'], { input: rules });
      }
    },
    remove: () => removeAll(n, ns),
  };
  process.once('exit', () => removeAll(n, ns));
  return mesh;
}

function removeAll(n: number, ns: (i: number) => string): void {
  for (let i = 0; i < n; i++) {
    try {
      ip('netns', 'del', ns(i));
    } catch { /* already gone */ }
  }
}

/**
 * A box config for a mesh test: its links, fast timers, the shared key, and the public keys
 * of the gateways whose receipts it trusts (a mesh box must name them).
 */
export function meshBoxConfig(dir: string, name: string, interfaces: string[], gatewayKeys: string[], extra: { broker?: string; uplink?: Record<string, unknown>; intervalMs?: number; mesh?: Record<string, unknown> } = {}): string {
  const keyFile = join(dir, 'mesh.key');
  writeFileSync(keyFile, `${MESH_KEY}\n`, { mode: 0o600 });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({
    stateDir: join(dir, name),
    sampling: { intervalMs: extra.intervalMs ?? 3_600_000 },
    uplink: { broker: extra.broker ?? null, gatewayKeys, ackTimeoutMs: 3000, reconnectMinMs: 100, reconnectMaxMs: 500, ...extra.uplink },
    mesh: {
      enabled: true, keyFile, ackTimeoutMs: 3000, receiptHoldMs: 2000,
      links: interfaces.map((i) => ({ type: 'udp', interface: i })),
      ...extra.mesh,
    },
  }));
  return file;
}
