// npm start: the whole path on one machine. An embedded MQTT broker (aedes) unless
// --broker is given, a gateway, N simulated boxes, and a subscriber that verifies and
// prints every reading as a consumer would.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { VerifyingConsumer } from '../codec/consumer.ts';
import { toHex } from '../codec/hex.ts';
import { CONFIG_HELP, CONFIG_OPTIONS, stringOption, type Command, type CommandContext } from '../command.ts';
import { openBox, type Box } from '../box.ts';
import { validateConfig } from '../config/load.ts';
import { IopError, errorMessage } from '../errors.ts';
import { Gateway } from '../gateway/gateway.ts';
import { DeviceRegistry } from '../gateway/registry.ts';
import { loadDeviceKey } from '../identity/software-key.ts';
import type { Logger } from '../log.ts';
import { MqttSession } from '../uplink/session.ts';
import { topicFilter } from '../uplink/topics.ts';
import { createUplink, type Uplink } from '../uplink/uplink.ts';
import { VERSION } from '../version.ts';
import { integerOption } from './options.ts';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'boxes, gateway and a verifying subscriber on one machine (what npm start runs)',
  usage: 'iop-agent demo [--broker URL] [--boxes N] [--interval MS] [--count N] [--state-dir DIR]',
  help: `      --broker URL      use this MQTT broker instead of an embedded one
      --boxes N         simulated boxes (default 3)
      --interval MS     sampling period of each box (default 1000)
      --count N         stop after N verified readings (default: until Ctrl-C)
${CONFIG_HELP.replace('/var/lib/iop-agent', './.demo-state')}`,
  options: { ...CONFIG_OPTIONS, broker: { type: 'string' }, boxes: { type: 'string' }, interval: { type: 'string' }, count: { type: 'string' } },
  async run(context) {
    const boxCount = integerOption(context, 'boxes', { min: 1, max: 50 }) ?? 3;
    const intervalMs = integerOption(context, 'interval', { min: 10, max: 86_400_000 }) ?? 1000;
    const count = integerOption(context, 'count', { min: 1, max: Number.MAX_SAFE_INTEGER });
    const stateDir = resolve(stringOption(context, 'state-dir') ?? '.demo-state');
    const log = context.log;
    const stops: (() => Promise<void>)[] = [];
    try {
      let broker = stringOption(context, 'broker');
      const embedded = broker === undefined;
      if (broker === undefined) {
        const started = await startEmbeddedBroker();
        stops.push(started.stop);
        broker = started.url;
        context.stdout.write(`embedded MQTT broker on ${broker}\n`);
      }
      const url = broker;

      const gatewayDir = join(stateDir, 'gateway');
      const gatewayKey = loadDeviceKey(gatewayDir, { create: true });
      const base = validateConfig({}, 'demo');
      const gateway = new Gateway({
        session: { ...base.uplink, url },
        stateDir: gatewayDir,
        key: gatewayKey.key,
        identity: gatewayKey.identity,
        registry: new DeviceRegistry({ allowAny: true }),
        gapTimeoutMs: 60_000,
        share: !embedded, // aedes has no shared subscriptions
        log: log.child('gateway'),
      });
      gateway.start();
      stops.unshift(() => gateway.stop());

      const printed = startSubscriber(context, url, count, stops);
      const boxes: { box: Box; uplink: Uplink }[] = [];
      for (let i = 1; i <= boxCount; i++) {
        const config = validateConfig({
          stateDir: join(stateDir, `box-${i}`),
          sampling: { intervalMs },
          uplink: { broker: url, gatewayKeys: [toHex(gatewayKey.identity.publicKey)], reconnectMinMs: 200, reconnectMaxMs: 5000 },
        }, 'demo');
        const boxLog = log.child(`box-${i}`);
        const box = await openBox(config, boxLog);
        const uplink = createUplink({ config: { ...config.uplink, broker: url }, stateDir: config.stateDir, box, version: VERSION, log: boxLog });
        boxes.push({ box, uplink });
        stops.unshift(async () => {
          await box.sampler.stop();
          await uplink.stop();
          await box.close();
        });
        context.stdout.write(`box-${i}: device ${box.identity.id}\n`);
        uplink.start();
        box.sampler.start(async (pack) => {
          await box.record(pack);
          uplink.notify();
        });
      }
      context.stdout.write(`${boxCount} boxes sampling every ${intervalMs} ms; gateway ${gatewayKey.identity.id.slice(0, 12)}…; Ctrl-C stops\n`);
      await Promise.race([printed, new Promise<void>((done) => context.signal.addEventListener('abort', () => done(), { once: true }))]);
    } finally {
      for (const stop of stops) await stop().catch((err: unknown) => log.warn(`while stopping: ${errorMessage(err)}`));
    }
    return 0;
  },
};

function startSubscriber(context: CommandContext, url: string, count: number | undefined, stops: (() => Promise<void>)[]): Promise<void> {
  const consumer = new VerifyingConsumer();
  const session = new MqttSession({
    url, clientId: `iop-demo-sub-${randomBytes(3).toString('hex')}`, keepaliveS: 30,
    subscriptions: [topicFilter('data')], reconnectMinMs: 200, reconnectMaxMs: 5000, log: context.log.child('subscriber'),
  });
  stops.unshift(() => session.stop());
  let shown = 0;
  return new Promise((done) => {
    session.on('message', (topic, payload) => {
      const result = consumer.accept(topic, new Uint8Array(payload));
      if (result.kind === 'rejected') context.log.warn(`subscriber rejected (${result.reason}): ${result.detail}`);
      if (result.kind !== 'reading') return;
      const { reading } = result;
      const values = reading.records.map((r) => `${r.n}=${String(r.v ?? r.vs ?? r.vb ?? r.s)}${r.u ? ' ' + r.u : ''}`).join('  ');
      context.stdout.write(`${reading.device.slice(0, 10)}…  seq ${String(reading.seq).padStart(4)}  verified  chain ${reading.chain.padEnd(5)}  ${values}\n`);
      if (count !== undefined && ++shown >= count) done();
    });
    session.start();
  });
}

async function startEmbeddedBroker(): Promise<{ url: string; stop: () => Promise<void> }> {
  let Aedes: { createBroker(): Promise<{ handle: (socket: never) => void; close(cb: () => void): void }> };
  try {
    ({ Aedes } = await import('aedes') as never);
  } catch {
    throw new IopError('USAGE', 'this build has no embedded broker: give --broker URL');
  }
  const aedes = await Aedes.createBroker();
  const server: Server = createServer(aedes.handle as never);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    stop: () => new Promise<void>((done) => {
      aedes.close(() => server.close(() => done()));
      // clients still connected keep the server open; close them with the broker
      setTimeout(done, 1000).unref();
    }),
  };
}
