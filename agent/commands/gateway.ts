import type { Command } from '../command.ts';
import { CONFIG_HELP, CONFIG_OPTIONS, stringOption } from '../command.ts';
import { IopError } from '../errors.ts';
import { Gateway } from '../gateway/gateway.ts';
import { DeviceRegistry } from '../gateway/registry.ts';
import { Pairings } from '../gateway/pairings.ts';
import { openGatewayStore } from '../gateway/store.ts';
import { dbOption } from '../gateway/ledger-reader.ts';
import { randomBytes } from 'node:crypto';
import { loadDeviceKey } from '../identity/software-key.ts';
import { toHex } from '../codec/hex.ts';
import { configFromFlags, integerOption } from './options.ts';
import type { Anchorer } from '../chain/anchorer.ts';
import { contributionEpochS, contributionFromFlags } from './gateway-contribution.ts';

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
      --no-affinity     with --db: take every reading the shared subscription brings, instead of
                        subscribing to the readings of the devices this gateway owns (docs/gateway.md)
      --session NAME    persistent session under this client id (one name per instance): the
                        broker keeps readings for the gateway while it restarts
      --chain-rpc URL   anchor each epoch's Merkle root of the stored readings on an EVM chain
                        through this JSON-RPC endpoint, and relay pairings (docs/chain.md);
                        needs the next two
      --chain-contract ADDR
                        the registry contract ('iop-agent chain deploy')
      --chain-key FILE  this gateway's chain key (0600): an authorised address with funds for gas
      --chain-confirmations N
                        blocks on top before an anchoring is no longer watched for reorgs (default 12)
      --stakes FILE     contribution on (docs/rewards.md): owners' stakes as JSON {"0x...": "stake"};
                        each epoch's scores and rewards go to <state dir>/rewards/<epoch>.json and
                        iop/v1/rewards/<epoch>
      --stakes-contract ADDR
                        contribution on, owners' stakes read from the stake registry
                        (contracts/IopStaking.sol) through --chain-rpc when each epoch closes
      --rewards-contract ADDR
                        anchor each rewards epoch's root of cumulative amounts on the claim
                        contract (contracts/IopRewards.sol), with --chain-rpc and --chain-key
      --pool N          reward pool per epoch, in the token's smallest unit (default 0)
      --locations FILE  boxes' locations as JSON {"<device id>": {"lat", "lon"}}
      --job-issuer ID   a key allowed to post data jobs (repeatable)
      --epoch-s S       epoch length in seconds, of anchoring (default 3600; fixed once anchoring
                        started) and of contribution (default 86400, at least 60; 10 with --grace-s)
      --grace-s S       a contribution epoch closes this long after its end (default 600);
                        given, --epoch-s may be as short as 10 s (tests, small deployments)
      --beacon-period-s S
                        the boxes' beacon period (mesh.beaconPeriodS; default 21600): one beacon
                        a box is credited per period
      --by-stake-only   reward by stake alone (today's rule), for comparison
${CONFIG_HELP}
Devices paired to an owner (claims on iop/v1/+/pair, docs/pairing.md) are accepted without
--allow; their owners are published retained on iop/v1/<id>/owner.
The gateway's own key (for receipts) is made in its state dir; 'iop-agent id --state-dir DIR'
prints the public key boxes list in uplink.gatewayKeys. Several gateways may share one
state dir (one machine) or one --db (several machines), each with the same gateway key in
its state dir: they split the readings through the shared subscription (and one of them at
a time anchors: with --db, all of them with the same --chain-key).`,
  options: {
    ...CONFIG_OPTIONS, broker: { type: 'string' }, allow: { type: 'string', multiple: true }, 'allow-file': { type: 'string' },
    'allow-any': { type: 'boolean' }, 'gap-timeout': { type: 'string' }, 'no-share': { type: 'boolean' }, 'no-affinity': { type: 'boolean' }, session: { type: 'string' }, db: { type: 'string' },
    'chain-rpc': { type: 'string' }, 'chain-contract': { type: 'string' }, 'chain-key': { type: 'string' }, 'chain-confirmations': { type: 'string' },
    stakes: { type: 'string' }, pool: { type: 'string' }, locations: { type: 'string' }, 'job-issuer': { type: 'string', multiple: true },
    'epoch-s': { type: 'string' }, 'grace-s': { type: 'string' }, 'beacon-period-s': { type: 'string' }, 'by-stake-only': { type: 'boolean' }, 'stakes-contract': { type: 'string' }, 'rewards-contract': { type: 'string' },
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
    const db = dbOption(stringOption(context, 'db'));
    const gapTimeoutMs = integerOption(context, 'gap-timeout', { min: 100, max: 86_400_000 }) ?? 300_000;
    const affinity = context.values['no-affinity'] !== true;
    const store = await openGatewayStore({ stateDir: config.stateDir, db, gapTimeoutMs, affinity });
    let anchorer: Anchorer | undefined;
    const pairings = new Pairings({
      session: { ...session, clientId: `iop-gwp-${identity.id.slice(0, 12)}-${randomBytes(3).toString('hex')}` },
      stateDir: config.stateDir, key, identity, registry, log: context.log.child('pairing'), store: store.pairings(config.stateDir),
      onRecorded: (device, m, signature) => anchorer?.relayPairing({ device, nonce: m.nonce, claim: { owner: m.owner, previousOwner: m.previousOwner, expires: Number(m.expires), signature } }),
    });
    // Paired devices are allowed before the first reading comes.
    await pairings.start();
    if (!registry.allowAny && registry.size === 0) {
      context.log.warn('no device allowed by --allow, --allow-file or --allow-any: only devices paired to an owner are accepted');
    }
    // Flags checked below fail after the pairing session started: stop what started, or
    // its reconnect timer would keep the process alive after the usage error.
    let started: { gateway: Gateway; anchorer: Anchorer | undefined; contribution: ReturnType<typeof contributionFromFlags>; rewardAnchorer: Anchorer | undefined };
    try {
      started = await (async () => {
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
          affinity,
          log: context.log,
        });
        context.log.info(`gateway ${toHex(identity.publicKey)} on ${broker}, store ${store.engine}; ${registry.allowAny ? 'any device' : `${registry.size} devices allowed`}`);
        // After the gateway: its store made the readings table the ledger reads.
        // Loaded only with the chain flags: a gateway that does not anchor never loads viem.
        const chainFlags = ['chain-rpc', 'chain-contract', 'chain-key', 'stakes-contract', 'rewards-contract'].some((name) => context.values[name] !== undefined)
          ? await import('../chain/gateway-flags.ts') : undefined;
        anchorer = await chainFlags?.anchorerFromFlags(context, config.stateDir);
        const contribution = contributionFromFlags(context, {
          session, stateDir: config.stateDir, pairings, log: context.log.child('contribution'), chainStakes: chainFlags?.stakesFromFlags(context),
        });
        if (context.values['rewards-contract'] !== undefined && !contribution) throw new IopError('USAGE', '--rewards-contract needs contribution on (--stakes or --stakes-contract)');
        // The contribution's epoch length only with contribution on: anchoring alone takes shorter epochs.
        const rewardAnchorer = contribution ? chainFlags?.rewardAnchorerFromFlags(context, config.stateDir, contributionEpochS(context)) : undefined;
        return { gateway, anchorer, contribution, rewardAnchorer };
      })();
    } catch (err) {
      await pairings.stop();
      await anchorer?.stop(); // its ledger may hold a PostgreSQL pool
      await store.close();
      throw err;
    }
    const { gateway, contribution, rewardAnchorer } = started;
    gateway.start();
    contribution?.start();
    anchorer?.start();
    rewardAnchorer?.start();
    const statsTimer = setInterval(() => context.log.info(`stats ${JSON.stringify(gateway.counters)}`), 60_000);
    await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve(), { once: true }));
    clearInterval(statsTimer);
    await contribution?.stop();
    await pairings.stop();
    await anchorer?.stop();
    await rewardAnchorer?.stop();
    await gateway.stop();
    context.stdout.write(JSON.stringify({ gateway: identity.id, ...gateway.counters, ...(anchorer ? { anchoring: anchorer.counters } : {}), ...(rewardAnchorer ? { rewardRoots: rewardAnchorer.counters } : {}) }) + '\n');
    return 0;
  },
};
