// Owner-signed remote commands on iop/v1/<id>/cmd: JSON {"command": <Command typed data
// message>, "signature": "0x…"}. Executed only if signed (EIP-712) by the box's current
// owner, with a counter above the last executed one (kept in owner.json across restarts)
// and not expired; every command, done or refused, is answered on iop/v1/<id>/cmd/result
// with a device-signed result, and refusals are counted by reason.
import type { MqttClient } from 'mqtt';
import type { DeviceIdentity } from '../codec/identity.ts';
import type { DeviceKey } from '../identity/device-key.ts';
import type { Logger } from '../log.ts';
import { TOPIC_ROOT } from '../uplink/topics.ts';
import type { SessionLike } from './claim.ts';
import { SignatureError, commandTypedData, recoverAddress, sameAddress, typedDataDigest, type CommandMessage } from './eip712.ts';
import type { OwnerStore } from './owner-store.ts';
import { signJson } from './signed-json.ts';

export const ACTIONS = ['set-interval', 'sensor-enable', 'sensor-disable', 'restart'] as const;
export type CommandRefusal = 'malformed' | 'not-paired' | 'other-device' | 'bad-signature' | 'not-owner' | 'replayed' | 'expired' | 'bad-action' | 'failed';

export function cmdTopic(device: string): string { return `${TOPIC_ROOT}/${device}/cmd`; }
export function cmdResultTopic(device: string): string { return `${TOPIC_ROOT}/${device}/cmd/result`; }

/** What the agent does for each action; throws with the reason when it cannot. */
export interface RemoteActions {
  setInterval(ms: number): void;
  setSensor(name: string, enabled: boolean): void;
  restart(): void;
}

export interface CommandResult { device: string; counter: number | null; action: string | null; ok: boolean; reason?: CommandRefusal; error?: string }

export class RemoteCommands {
  readonly counters = { executed: 0, refused: { 'malformed': 0, 'not-paired': 0, 'other-device': 0, 'bad-signature': 0, 'not-owner': 0, 'replayed': 0, 'expired': 0, 'bad-action': 0, 'failed': 0 } as Record<CommandRefusal, number> };
  private client: MqttClient | undefined;
  private readonly options: { identity: DeviceIdentity; key: DeviceKey; store: OwnerStore; actions: RemoteActions; wallNow?: () => number; log: Logger };

  constructor(options: RemoteCommands['options']) {
    this.options = options;
  }

  attach(session: SessionLike): void {
    const id = this.options.identity.id;
    session.on('connect', (client) => {
      this.client = client;
      client.subscribe(cmdTopic(id), { qos: 1 });
    });
    session.on('message', (topic, payload) => {
      if (topic !== cmdTopic(id) || payload.length === 0) return;
      const result = this.handle(payload.toString('utf8'));
      void signJson(this.options.identity, this.options.key, result)
        .then((signed) => this.client?.publishAsync(cmdResultTopic(id), Buffer.from(signed), { qos: 1 }))
        .catch((err) => this.options.log.warn(`command result not sent: ${err instanceof Error ? err.message : String(err)}`));
    });
  }

  /** Checks and runs one command; never throws. */
  handle(text: string): CommandResult {
    const device = this.options.identity.id;
    let command: CommandMessage;
    let signature: unknown;
    try {
      if (text.length > 8192) throw new Error('too long');
      ({ command, signature } = JSON.parse(text) as { command: CommandMessage; signature: unknown });
      if (typeof command !== 'object' || command === null) throw new Error('no command');
      typedDataDigest(commandTypedData(command)); // validates every field's type
    } catch (err) {
      return this.refuse({ device, counter: null, action: null }, 'malformed', `not a signed command: ${err instanceof Error ? err.message : String(err)}`);
    }
    const base = { device, counter: Number(command.counter), action: String(command.action) };
    const owner = this.options.store.current?.owner;
    if (!owner) return this.refuse(base, 'not-paired', 'the box has no owner');
    if (command.device !== device) return this.refuse(base, 'other-device', `the command is for device ${command.device}`);
    let signer: string;
    try {
      signer = recoverAddress(typedDataDigest(commandTypedData(command)), String(signature));
    } catch (err) {
      return this.refuse(base, 'bad-signature', err instanceof SignatureError ? err.message : 'unreadable signature');
    }
    if (!sameAddress(signer, owner)) return this.refuse(base, 'not-owner', `signed by ${signer}, not the owner ${owner}`);
    const last = this.options.store.commandCounter;
    if (base.counter <= last) return this.refuse(base, 'replayed', `counter ${base.counter} is not above the last executed (${last})`);
    const nowS = Math.floor((this.options.wallNow ?? Date.now)() / 1000);
    if (Number(command.expires) <= nowS) return this.refuse(base, 'expired', `expired at ${command.expires} (box time ${nowS})`);
    // The counter is spent before acting: a command that fails is not run again by a replay.
    this.options.store.setCommandCounter(base.counter);
    try {
      this.run(command);
    } catch (err) {
      const reason: CommandRefusal = err instanceof ActionError ? 'bad-action' : 'failed';
      return this.refuse(base, reason, err instanceof Error ? err.message : String(err));
    }
    this.counters.executed++;
    this.options.log.info(`owner command ${base.counter} ${base.action} ${command.args} done`);
    return { ...base, ok: true };
  }

  private run(command: CommandMessage): void {
    const { actions } = this.options;
    const args = command.args === '' ? {} : parseArgs(command.args);
    switch (command.action) {
      case 'set-interval': {
        const ms = args.intervalMs;
        if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 10 || ms > 86_400_000) throw new ActionError('set-interval takes {"intervalMs": 10 to 86400000}');
        return actions.setInterval(ms);
      }
      case 'sensor-enable':
      case 'sensor-disable': {
        if (typeof args.sensor !== 'string') throw new ActionError(`${command.action} takes {"sensor": "<name>"}`);
        return actions.setSensor(args.sensor, command.action === 'sensor-enable');
      }
      case 'restart':
        return actions.restart();
      default:
        throw new ActionError(`unknown action '${String(command.action).slice(0, 40)}' (known: ${ACTIONS.join(', ')})`);
    }
  }

  private refuse(base: Omit<CommandResult, 'ok'>, reason: CommandRefusal, error: string): CommandResult {
    this.counters.refused[reason]++;
    this.options.log.warn(`owner command refused (${reason}): ${error}`);
    return { ...base, ok: false, reason, error };
  }
}

export class ActionError extends Error {}

function parseArgs(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch { /* below */ }
  throw new ActionError('args is not a JSON object');
}
