// The console's command table: the names are the interface. Each command answers with
// data (rendered as one JSON line with --json) and short text for a person. Nothing here
// can reach the device key: the agent view below exposes only public facts.
import { PairingError, type Pairing } from '../pairing/pairing.ts';
import type { WifiConfig } from '../config/schema.ts';
import { describeWifi } from './wifi-setting.ts';

export interface SensorView { name: string; kind: string; value?: number | string | boolean; unit?: string; at?: string; error?: string }
export interface MeshView { node: string; neighbours: { node: string; link: string; cost: number }[]; uplinkVia: string | null; uplinkMetric: number | null }
export interface StatusSnapshot {
  device: string;
  version: string;
  uptimeS: number;
  time: { wall: string; quality: string };
  uplink: { broker: string | null; connected: boolean };
  queue: number;
  owner: string | null;
  sensors: SensorView[];
  mesh: MeshView | null;
}

/** What the running agent shows the console. */
export interface ConsoleAgent {
  identity(): { id: string; publicKey: string; scheme: string };
  status(): StatusSnapshot;
  logs(count: number): string[];
  pairing: Pairing;
  /** Whether the pairing claim still waits for the gateway's receipt. */
  claimPending(): boolean;
  /** Validates and stores the broker URL; returns where it was stored. Throws on a bad URL. */
  setBroker(url: string): string;
  /** Whether the configuration enables the mesh (WiFi setup applies to its UDP links). */
  meshEnabled: boolean;
  /** Validates and stores an interface's WiFi setup (null: none); returns where. Throws on a bad value. */
  setWifi(iface: string, wifi: unknown): string;
  /** Stops the agent so its supervisor starts it again. */
  restart(): void;
}

export type Answer =
  | { ok: true; data: Record<string, unknown>; text: string; after?: () => void }
  | { ok: false; error: string; code: string };

interface ConsoleCommand {
  name: string;
  usage: string;
  summary: string;
  run(args: string[], agent: ConsoleAgent): Answer;
}

const ok = (data: Record<string, unknown>, text: string): Answer => ({ ok: true, data, text });
const fail = (code: string, error: string): Answer => ({ ok: false, code, error });

function table(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24, m = Math.floor(seconds / 60) % 60, s = Math.floor(seconds % 60);
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}

function sensorLine(s: SensorView, width: number): string {
  const what = s.error !== undefined ? `error: ${s.error}` : s.value !== undefined ? `${s.value}${s.unit ? ' ' + s.unit : ''}${s.at ? `  (${s.at})` : ''}` : 'no reading yet';
  return `${s.name.padEnd(width)}  ${what}`;
}

function sensorLines(sensors: SensorView[]): string[] {
  const width = Math.max(0, ...sensors.map((s) => s.name.length));
  return sensors.map((s) => sensorLine(s, width));
}

function meshLines(mesh: MeshView | null): string[] {
  if (!mesh) return ['off'];
  const route = mesh.uplinkVia ? `uplink via ${mesh.uplinkVia} (metric ${mesh.uplinkMetric})` : 'no route to an uplink';
  return [`${mesh.neighbours.length} neighbours; ${route}`, ...mesh.neighbours.map((n) => `  ${n.node} on ${n.link}, cost ${n.cost}`)];
}

function ownerText(owner: string | null): string {
  return owner ?? 'not paired (pair start --owner 0x...)';
}

const help: ConsoleCommand = {
  name: 'help', usage: 'help', summary: 'this list',
  run: () => ok({ commands: COMMANDS.map((c) => ({ usage: c.usage, summary: c.summary })) },
    `${table(COMMANDS.map((c) => [c.usage, c.summary]))}\nAdd --json to any command for one JSON line.`),
};

const status: ConsoleCommand = {
  name: 'status', usage: 'status', summary: 'device, time, sensors, mesh, uplink, queue, owner',
  run(_args, agent) {
    const s = agent.status();
    const sensors = sensorLines(s.sensors);
    const mesh = meshLines(s.mesh);
    const rows: [string, string][] = [
      ['device', s.device], ['version', s.version], ['uptime', duration(s.uptimeS)], ['time', `${s.time.wall} (${s.time.quality})`],
      ['uplink', s.uplink.broker ? `${s.uplink.broker} ${s.uplink.connected ? 'connected' : 'not connected'}` : 'no broker (set broker mqtt://...)'],
      ['queue', `${s.queue} readings waiting`], ['owner', ownerText(s.owner)],
      ['sensors', sensors[0] ?? 'none'], ...sensors.slice(1).map((l): [string, string] => ['', l]),
      ['mesh', mesh[0]!], ...mesh.slice(1).map((l): [string, string] => ['', l]),
    ];
    return ok({ ...s }, table(rows));
  },
};

const id: ConsoleCommand = {
  name: 'id', usage: 'id', summary: 'device id and public key',
  run(_args, agent) {
    const i = agent.identity();
    return ok({ id: i.id, publicKey: i.publicKey }, table([['id', i.id], ['public key', `${i.publicKey} (${i.scheme})`]]));
  },
};

const sensors: ConsoleCommand = {
  name: 'sensors', usage: 'sensors', summary: "each sensor's last value or error",
  run(_args, agent) {
    const list = agent.status().sensors;
    return ok({ sensors: list }, sensorLines(list).join('\n') || 'no sensors');
  },
};

const mesh: ConsoleCommand = {
  name: 'mesh', usage: 'mesh', summary: 'mesh neighbours and route to an uplink',
  run(_args, agent) {
    const m = agent.status().mesh;
    return ok({ mesh: m }, meshLines(m).join('\n'));
  },
};

const log: ConsoleCommand = {
  name: 'log', usage: 'log [N]', summary: 'last N log lines (default 20, at most 500)',
  run(args, agent) {
    const text = args[0] ?? '20';
    if (args.length > 1 || !/^\d{1,3}$/.test(text) || Number(text) < 1 || Number(text) > 500) return fail('USAGE', 'log takes a number of lines from 1 to 500');
    const lines = agent.logs(Number(text));
    return ok({ lines }, lines.join('\n') || 'no log lines yet');
  },
};

function pairStart(args: string[], agent: ConsoleAgent): Answer {
  const at = args.indexOf('--owner');
  const owner = at >= 0 ? args[at + 1] : undefined;
  if (owner === undefined || args.length !== 2) return fail('USAGE', 'usage: pair start --owner 0x<owner address>');
  const { typedData, signer, expiresInS } = agent.pairing.start(owner);
  const m = typedData.message;
  const text = [
    `Pairing ${m.device} to ${m.owner}.`,
    signer === m.owner ? `The owner ${m.owner} signs this typed data (eth_signTypedData_v4) within ${expiresInS / 60} minutes:`
      : `Changing owner: the CURRENT owner ${signer} signs this typed data (eth_signTypedData_v4) within ${expiresInS / 60} minutes:`,
    JSON.stringify(typedData),
    'Then type: pair finish 0x<signature>',
  ].join('\n');
  return ok({ typedData, signer, expiresInS }, text);
}

function pairFinish(args: string[], agent: ConsoleAgent): Answer {
  if (args.length !== 1) return fail('USAGE', 'usage: pair finish 0x<signature> (130 hex digits)');
  const record = agent.pairing.finish(args[0]!);
  return ok({ owner: record.owner, pairedAt: record.pairedAt, nonce: record.typedData.message.nonce },
    `Paired: owner ${record.owner} (at ${record.pairedAt}). The pairing claim goes to the gateway with the readings.`);
}

function pairStatus(agent: ConsoleAgent): Answer {
  const s = agent.pairing.status();
  const pending = s.pending ? `waiting for ${s.pending.signer}'s signature, ${s.pending.expiresInS} s left` : 'none';
  const claimPending = agent.claimPending();
  const gateway = s.owner === null ? '-' : claimPending ? 'claim waiting to reach the gateway (sent when the uplink is up)' : 'recorded by the gateway';
  return ok({ ...s, claimPending }, table([['owner', ownerText(s.owner)], ['paired at', s.pairedAt ?? '-'], ['gateway', gateway], ['pairing', pending],
    ['attempts', `${s.counters.paired} paired, ${s.counters.refused} refused`]]));
}

function pairReset(args: string[], agent: ConsoleAgent): Answer {
  const device = agent.identity().id;
  if (args.length === 0) return fail('CONFIRM', `factory reset forgets the owner: to confirm, type pair reset ${device}`);
  if (args.length !== 1 || args[0] !== device) return fail('CONFIRM', `that is not this device's id: to confirm, type pair reset ${device}`);
  agent.pairing.reset();
  return ok({ owner: null }, 'Owner forgotten: the box can be paired again (pair start --owner 0x...).');
}

const pair: ConsoleCommand = {
  name: 'pair', usage: 'pair start --owner 0x... | finish 0x... | status | reset', summary: 'pair the box to its owner (wallet signature)',
  run(args, agent) {
    const [sub, ...rest] = args;
    try {
      switch (sub) {
        case 'start': return pairStart(rest, agent);
        case 'finish': return pairFinish(rest, agent);
        case 'status': return pairStatus(agent);
        case 'reset': return pairReset(rest, agent);
        default: return fail('USAGE', 'pair takes start --owner 0x..., finish 0x<signature>, status or reset');
      }
    } catch (err) {
      if (err instanceof PairingError) return fail(err.code, err.message);
      throw err;
    }
  },
};

const WIFI_USAGE = 'usage: set wifi <interface> 80211s|ibss <meshId> <channel>, or set wifi <interface> off';

function stored(what: () => string): { where: string } | Answer {
  try {
    return { where: what() };
  } catch (err) {
    return fail('BAD_VALUE', err instanceof Error ? err.message : String(err));
  }
}

function setBroker(args: string[], agent: ConsoleAgent): Answer {
  if (args.length !== 1) return fail('USAGE', 'usage: set broker mqtt://host[:port]');
  const result = stored(() => agent.setBroker(args[0]!));
  if (!('where' in result)) return result;
  return ok({ broker: args[0], storedIn: result.where, restartNeeded: true }, `Broker ${args[0]} stored in ${result.where}; type restart to use it.`);
}

function setWifi(args: string[], agent: ConsoleAgent): Answer {
  const [iface, mode, meshId, channel] = args;
  const off = args.length === 2 && mode === 'off';
  if (iface === undefined || (!off && args.length !== 4)) return fail('USAGE', WIFI_USAGE);
  if (!off && !agent.meshEnabled) {
    return fail('MESH_OFF', 'the mesh is not enabled on this box: WiFi setup applies to mesh links, and mesh.enabled (with its key file, mesh.keyFile) is set in the configuration file');
  }
  // The channel goes to the schema as a number when it is one, so its rule names the range.
  const wifi = off ? null : { mode, meshId, channel: /^\d{1,4}$/.test(channel!) ? Number(channel) : channel };
  const result = stored(() => agent.setWifi(iface, wifi));
  if (!('where' in result)) return result;
  // Stored, so it passed the schema.
  return ok({ interface: iface, wifi, storedIn: result.where, restartNeeded: true },
    `WiFi: ${describeWifi(iface, wifi as WifiConfig | null)}; stored in ${result.where}; type restart to apply it.`);
}

const set: ConsoleCommand = {
  name: 'set', usage: 'set broker <url> | wifi <if> 80211s|ibss <meshId> <channel> | wifi <if> off',
  summary: 'MQTT broker (mqtt://, mqtts://, ws://, wss://), WiFi mesh setup of a mesh interface; apply on restart',
  run(args, agent) {
    const [what, ...rest] = args;
    if (what === 'broker') return setBroker(rest, agent);
    if (what === 'wifi') return setWifi(rest, agent);
    return fail('USAGE', `set takes broker mqtt://host[:port], or wifi: ${WIFI_USAGE.slice('usage: '.length)}`);
  },
};

const restart: ConsoleCommand = {
  name: 'restart', usage: 'restart', summary: 'restart the agent (readings are kept)',
  run(_args, agent) {
    return { ok: true, data: { restarting: true }, text: 'Restarting; the console is back in a few seconds.', after: () => agent.restart() };
  },
};

const COMMANDS: ConsoleCommand[] = [help, status, id, sensors, mesh, log, pair, set, restart];

/** Splits a line into words; "double quotes" keep spaces. */
export function tokenize(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

export function execute(line: string, agent: ConsoleAgent): { answer: Answer; json: boolean } | undefined {
  // A line starting with # is a comment: scripts (and the tech's CLI) use it to find
  // their place in the output.
  if (line.trimStart().startsWith('#')) return undefined;
  const words = tokenize(line);
  const json = words.includes('--json');
  const [name, ...args] = words.filter((w) => w !== '--json');
  if (name === undefined) return json ? { answer: fail('EMPTY', 'empty command: type help'), json } : undefined;
  const command = COMMANDS.find((c) => c.name === name.toLowerCase());
  if (!command) return { answer: fail('UNKNOWN_COMMAND', `unknown command '${name.slice(0, 40)}': type help for the list`), json };
  try {
    return { answer: command.run(args, agent), json };
  } catch (err) {
    return { answer: fail('INTERNAL', `${name} failed: ${err instanceof Error ? err.message : String(err)}`), json };
  }
}

export function render(answer: Answer, json: boolean): string {
  if (json) return JSON.stringify(answer.ok ? { ok: true, ...answer.data } : { ok: false, error: answer.error, code: answer.code });
  return answer.ok ? answer.text : `error: ${answer.error}`;
}
