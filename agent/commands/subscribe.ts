import { randomBytes } from 'node:crypto';
import { VerifyingConsumer, type ConsumedReading } from '../codec/consumer.ts';
import { readingToJson } from '../codec/verify.ts';
import type { Command } from '../command.ts';
import { CONFIG_HELP, CONFIG_OPTIONS, stringOption } from '../command.ts';
import { IopError, errorMessage } from '../errors.ts';
import { identityFromId } from '../codec/identity.ts';
import { MqttSession } from '../uplink/session.ts';
import { RateLimitedLog } from '../uplink/rate-limited-log.ts';
import { topicFilter } from '../uplink/topics.ts';
import { configFromFlags, integerOption } from './options.ts';

export const subscribeCommand: Command = {
  name: 'subscribe',
  summary: 'subscribe to readings and verify each one and its chain (trusting no gateway)',
  usage: 'iop-agent subscribe --broker URL [--device ID] [--json] [--count N]',
  help: `      --broker URL      MQTT broker
      --device ID       only this device (default: every device)
      --json            one JSON object per reading, as 'iop-agent verify' prints
      --count N         exit after N readings
      --session NAME    a persistent session under this client id: the broker keeps what
                        arrives while the subscriber is away (for a week)
${CONFIG_HELP}
Duplicates (a box publishing again what it was not sure arrived) are dropped; bad,
forged or replayed messages are counted and reported on standard error.`,
  options: { ...CONFIG_OPTIONS, broker: { type: 'string' }, device: { type: 'string' }, json: { type: 'boolean' }, count: { type: 'string' }, session: { type: 'string' } },
  async run(context) {
    const { config } = configFromFlags(context);
    const broker = config.uplink.broker;
    if (!broker) throw new IopError('USAGE', '--broker is required');
    const device = stringOption(context, 'device');
    if (device !== undefined) {
      try {
        identityFromId(device);
      } catch (err) {
        throw new IopError('USAGE', `--device: ${errorMessage(err)}`);
      }
    }
    const count = integerOption(context, 'count', { min: 1, max: Number.MAX_SAFE_INTEGER });
    const json = context.values.json === true;
    const session = stringOption(context, 'session');
    const consumer = new VerifyingConsumer();
    const problems = new RateLimitedLog(context.log);
    const mqttSession = new MqttSession({
      ...config.uplink,
      url: broker,
      clientId: session ?? `iop-sub-${randomBytes(4).toString('hex')}`,
      ...(session ? { sessionExpiryS: 7 * 86_400 } : {}),
      subscriptions: [topicFilter('data', device)],
      log: context.log.child('mqtt'),
    });
    let printed = 0;
    const done = new Promise<void>((resolve) => {
      context.signal.addEventListener('abort', () => resolve(), { once: true });
      mqttSession.on('message', (topic, payload) => {
        const result = consumer.accept(topic, new Uint8Array(payload));
        if (result.kind === 'rejected') return problems.error(`rejected (${result.reason}): ${result.detail}`, result.reason);
        if (result.kind === 'duplicate') return;
        const { reading } = result;
        context.stdout.write(json ? JSON.stringify({ ...readingToJson(reading), late: reading.late }) + '\n' : formatLine(reading) + '\n');
        if (count !== undefined && ++printed >= count) resolve();
      });
    });
    mqttSession.start();
    await done;
    await mqttSession.stop();
    context.log.info(`summary ${JSON.stringify(consumer.counters)}`);
    return 0;
  },
};

function formatLine(reading: ConsumedReading): string {
  const values = reading.records.map((r) => `${r.n}=${String(r.v ?? r.vs ?? r.vb ?? r.vd ?? r.s)}${r.u ? ' ' + r.u : ''}`).join('  ');
  return `${reading.device.slice(0, 12)}…  seq ${reading.seq}  chain ${reading.chain}${reading.late ? ' (late)' : ''}  ${values}`;
}
