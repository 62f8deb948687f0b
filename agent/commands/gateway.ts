import type { Command } from '../command.ts';
import { CONFIG_HELP, CONFIG_OPTIONS, stringOption } from '../command.ts';
import { IopError } from '../errors.ts';
import { Gateway } from '../gateway/gateway.ts';
import { DeviceRegistry } from '../gateway/registry.ts';
import { Pairings } from '../gateway/pairings.ts';
import { openGatewayStore, redact } from '../gateway/store.ts';
import { randomBytes } from 'node:crypto';
import { loadDeviceKey } from '../identity/software-key.ts';
import { toHex } from '../codec/hex.ts';
import { configFromFlags, integerOption } from './options.ts';

export const gatewayCommand: Command = {
  name: 'gateway',
  summary: 'run the reference chain gateway: verify, keep and acknowledge readings',
  usage: 'iop-agent gateway --broker URL --state-dir DIR [--db postgres://...] [--allow ID ...] [--allow-file FILE] [--allow-any]',
  help: `      --broker URL      MQTT broker (or uplink.broker in the config)
      --db URL          keep readings in PostgreSQL (postgres://user:pass@host/db) instead of
                        gateway.db in the state dir; gateways on several machines share it
      --allow ID        accept readings of this device (repeatable)
      --allow-file FILE accept the devices listed in FILE, one id a line (# comments)
      --allow-any       accept any device (demos and tests)
      --gap-timeout MS  how long to wait for missing readings before the chain goes on (default 300000)
      --no-share        plain subscription instead of the MQTT 5 shared one (brokers without $share)
      --session NAME    persistent session under this client id (one name per instance): the
                        broker keeps readings for the gateway while it restarts
${CONFIG_HELP}
Devices paired to an owner (claims on iop/v1/+/pair, docs/pairing.md) are accepted without
--allow; their owners are published retained on iop/v1/<id>/owner.
The gateway's own key (for receipts) is made in its state dir; 'iop-agent id --state-dir DIR'
prints the public key boxes list in uplink.gatewayKeys. Several gateways may share one
state dir (one machine) or one --db (several machines): they split the readings through the
shared subscription, and each needs the same gateway key in its state dir.`,
  options: {
    ...CONFIG_OPTIONS, broker: { type: 'string' }, allow: { type: 'string', multiple: true }, 'allow-file': { type: 'string' },
    'allow-any': { type: 'boolean' }, 'gap-timeout': { type: 'string' }, 'no-share': { type: 'boolean' }, session: { type: 'string' }, db: { type: 'string' },
  },
  async run(context) {
    const { config } = configFromFlags(context);
    const broker = config.uplink.broker;
    if (!broker) throw new IopError('USAGE', '--broker is required (or uplink.broker in the config)');
    const registry = new DeviceRegistry({
      allow: (context.values.allow as string[] | undefined) ?? [],
      allowFile: stringOption(context, 'allow-file'),
      allowAny: context.values['allow-any'] === true,
    });
    const { key, identity } = loadDeviceKey(config.stateDir, { create: true });
    const session = { ...config.uplink, url: broker, reconnectMaxMs: Math.min(config.uplink.reconnectMaxMs, 5000) };
    const db = stringOption(context, 'db');
    if (db !== undefined && !/^postgres(ql)?:\/\//.test(db)) throw new IopError('USAGE', `--db takes a postgres:// URL, not ${JSON.stringify(redact(db))}`);
    const gapTimeoutMs = integerOption(context, 'gap-timeout', { min: 100, max: 86_400_000 }) ?? 300_000;
    const store = await openGatewayStore({ stateDir: config.stateDir, db, gapTimeoutMs });
    const pairings = new Pairings({
      session: { ...session, clientId: `iop-gwp-${identity.id.slice(0, 12)}-${randomBytes(3).toString('hex')}` },
      stateDir: config.stateDir, key, identity, registry, log: context.log.child('pairing'), store: store.pairings(config.stateDir),
    });
    // Paired devices are allowed before the first reading comes.
    await pairings.start();
    if (!registry.allowAny && registry.size === 0) {
      context.log.warn('no device allowed by --allow, --allow-file or --allow-any: only devices paired to an owner are accepted');
    }
    const gateway = new Gateway({
      // A gateway is one per deployment, not one of a fleet: it may come back quickly.
      session,
      sessionName: stringOption(context, 'session'),
      stateDir: config.stateDir,
      key,
      identity,
      registry,
      gapTimeoutMs,
      store,
      share: context.values['no-share'] !== true,
      log: context.log,
    });
    context.log.info(`gateway ${toHex(identity.publicKey)} on ${broker}, store ${store.engine}; ${registry.allowAny ? 'any device' : `${registry.size} devices allowed`}`);
    gateway.start();
    const statsTimer = setInterval(() => context.log.info(`stats ${JSON.stringify(gateway.counters)}`), 60_000);
    await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve(), { once: true }));
    clearInterval(statsTimer);
    await pairings.stop();
    await gateway.stop();
    context.stdout.write(JSON.stringify({ gateway: identity.id, ...gateway.counters }) + '\n');
    return 0;
  },
};
