// Boxes on emulated serial radios for end-to-end tests: a config per box with one radio
// link on its pty, the mesh key, and the gateway's public key pinned.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { runCli, type CliOptions } from './cli.ts';
import { MESH_KEY } from './netns.ts';
import { gatewayKey, readings, testDeployment, until, type Running } from './system.ts';
import { Channel } from '../emulators/channel.ts';
import { profileOf } from '../../drivers/radio/lora-airtime.ts';

export const TEST_RADIO = { region: 'EU868', frequencyHz: 869_525_000, bandwidthHz: 250_000, spreadingFactor: 5, codingRate: 5, txPowerDbm: 14 } as const;

/** Mesh timers for a fast test over SF5/250 kHz radios (a 255-byte frame is about 70 ms on air). */
export const RADIO_TEST_TIMERS = { helloMinMs: 1500, helloMaxMs: 6000, updateMinMs: 1500, updateMaxMs: 12_000, ackTimeoutMs: 300, helloMissesDown: 4 };

export function radioBoxConfig(dir: string, name: string, links: object[], options: { broker?: string; gatewayKey: string; intervalMs?: number }): string {
  const keyFile = join(dir, 'mesh.key');
  writeFileSync(keyFile, `${MESH_KEY}\n`, { mode: 0o600 });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({
    stateDir: join(dir, name),
    sampling: { intervalMs: options.intervalMs ?? 3_600_000 },
    // one sensor: a reading fits one fragment, as a field box reporting one quantity
    sensors: [{ type: 'simulated', name: 'temperature', quantity: 'temperature' }],
    uplink: { broker: options.broker ?? null, ack: 'gateway', gatewayKeys: [options.gatewayKey], ackTimeoutMs: 3000, reconnectMinMs: 100, reconnectMaxMs: 500 },
    mesh: { enabled: true, keyFile, ackTimeoutMs: 5000, receiptHoldMs: 2000, timers: RADIO_TEST_TIMERS, links },
  }));
  return file;
}

export const kissLink = (path: string) => ({ type: 'kiss', path, baud: 115200, radio: TEST_RADIO });
export const reyaxLink = (path: string) => ({ type: 'reyax', path, baud: 115200, radio: TEST_RADIO, networkId: 18 });

interface Deployment {
  dir: { path: string };
  broker: { url: string };
  launch(args: string[], cli?: CliOptions): Running;
}

/**
 * The gateway on the test broker, a verifying subscriber for `device`, and the
 * gateway's own stream of what it verified and linked into the device's chain, in order.
 */
export async function radioUplink(deployment: Deployment, name: string, device: string) {
  const { dir, broker, launch } = deployment;
  const gatewayDir = join(dir.path, `${name}-gw`);
  const key = await gatewayKey(gatewayDir);
  const gateway = launch(['gateway', '--broker', broker.url, '--state-dir', gatewayDir, '--allow-any']);
  const subscriber = launch(['subscribe', '--broker', broker.url, '--device', device, '--json']);
  await until('gateway connected', () => /connected/.test(gateway.stderr()), 10_000);
  const client = await connectAsync(broker.url);
  const chain: { seq: number; chain: string }[] = [];
  client.on('message', (_topic, payload) => chain.push(JSON.parse(payload.toString())));
  await client.subscribeAsync(`iop/v1/${device}/verified`, { qos: 1 });
  return { key, subscriber, gatewayChain: () => chain, close: () => client.endAsync() };
}

export async function meshStatus(stateDir: string) {
  const result = await runCli(['mesh', '--json', '--state-dir', stateDir]);
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout.toString());
}

/** Sequence numbers a subscriber verified, each once, in order. */
export const verifiedSeqs = (subscriber: Running) => [...new Set(readings(subscriber).filter((r) => r.valid).map((r) => r.seq))].sort((a, b) => a - b);

interface Suite {
  before(hook: () => unknown): void;
  after(hook: () => unknown): void;
}

/**
 * testDeployment (Mosquitto, temp dir, launched processes) plus emulated radio channels
 * and gateway sides, all closed after the file's tests.
 */
export function radioDeployment(suite: Suite) {
  const deployment = testDeployment(suite);
  const closers: (() => Promise<void>)[] = [];
  suite.after(async () => {
    for (const close of closers) await close();
  });
  return {
    ...deployment,
    channel(options: ConstructorParameters<typeof Channel>[0] = {}): Channel {
      const channel = new Channel({ profile: profileOf(TEST_RADIO), ...options });
      closers.push(() => channel.close());
      return channel;
    },
    async uplink(name: string, device: string) {
      const up = await radioUplink(deployment, name, device);
      closers.push(up.close);
      return up;
    },
  };
}
