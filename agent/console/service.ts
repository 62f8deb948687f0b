// Wires the field console into the running agent: the owner pairing, the last values,
// the log ring and the tty server.
import { realClock } from '../../drivers/clock.ts';
import type { Box } from '../box.ts';
import type { SenmlPack } from '../codec/senml.ts';
import type { ConsoleConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { MeshService } from '../mesh/service.ts';
import { OwnerStore } from '../pairing/owner-store.ts';
import { Pairing } from '../pairing/pairing.ts';
import { ClaimOutbox, makeClaim } from '../pairing/claim.ts';
import { ActionError, RemoteCommands } from '../pairing/remote-commands.ts';
import { readConsoleSettings, storeSettings } from './settings.ts';
import type { Uplink } from '../uplink/uplink.ts';
import { LastValues, createAgentView } from './agent-view.ts';
import { LogRing, teeLogger } from './log-ring.ts';
import { ConsoleServer } from './server.ts';

export interface ConsoleService {
  pairing: Pairing;
  onPack(pack: SenmlPack): void;
  stop(): Promise<void>;
}

/** The agent's logger, with the last lines kept for `log N`. */
export function consoleLogger(log: Logger): { log: Logger; ring: LogRing } {
  const ring = new LogRing();
  return { log: teeLogger(log, ring), ring };
}

export function startConsole(options: {
  config: ConsoleConfig; stateDir: string; box: Box; broker: string | null; gatewayKeys: string[]; meshEnabled: boolean;
  uplink: () => Uplink | undefined; mesh: () => MeshService | undefined;
  log: Logger; ring: LogRing; restart: () => void;
}): ConsoleService {
  const log = options.log.child('console');
  const { box } = options;
  const store = new OwnerStore(options.stateDir);
  const outbox = new ClaimOutbox({ identity: box.identity, stateDir: options.stateDir, gatewayKeys: options.gatewayKeys,
    currentNonce: () => store.current?.typedData.message.nonce, log: options.log.child('pairing') });
  const uplink = options.uplink();
  if (uplink) outbox.attach(uplink.session);
  const pairing = new Pairing({
    device: box.identity.id, store, clock: realClock,
    onPaired: (record) => {
      log.info(`paired to owner ${record.owner}`);
      makeClaim(box.identity, box.key, record).then((claim) => outbox.store(claim))
        .catch((err) => log.error(`pairing claim not stored: ${err instanceof Error ? err.message : String(err)}`));
    },
  });
  const remote = new RemoteCommands({
    identity: box.identity, key: box.key, store, log: options.log.child('owner-commands'),
    actions: {
      setInterval: (ms) => {
        box.sampler.setIntervalMs(ms);
        storeSettings(options.stateDir, { intervalMs: ms });
      },
      setSensor: (name, enabled) => {
        if (!box.sampler.setEnabled(name, enabled)) throw new ActionError(`no sensor named '${name.slice(0, 40)}'`);
        const disabled = new Set(readConsoleSettings(options.stateDir).disabledSensors ?? []);
        if (enabled) disabled.delete(name); else disabled.add(name);
        storeSettings(options.stateDir, { disabledSensors: [...disabled] });
      },
      restart: () => setTimeout(options.restart, 500), // the signed result goes out first
    },
  });
  if (uplink) remote.attach(uplink.session);
  for (const name of readConsoleSettings(options.stateDir).disabledSensors ?? []) box.sampler.setEnabled(name, false);
  const values = new LastValues();
  const agent = createAgentView({ ...options, values, pairing, claimPending: () => outbox.pending });
  const server = new ConsoleServer({ tty: options.config.tty, baud: options.config.baud, agent, log });
  server.start();
  return { pairing, onPack: (pack) => values.onPack(pack), stop: () => server.stop() };
}
