// What the status page says of the MQTT uplink beyond "connected": since when, which MQTT
// version, and how many failures in the last hour (from the session's own events).
import type { MqttSession } from '../uplink/session.ts';

const HOUR_MS = 3_600_000;
/** A failing broker retries with backoff: this bounds the kept times on any schedule. */
const MAX_KEPT = 1000;

export interface UplinkView {
  /** the broker URL without user name or password */
  broker: string | null;
  connected: boolean;
  connectedSinceMs: number | null;
  mqttVersion: string | null;
  errorsLastHour: number;
}

/** A URL as it may be shown: credentials never reach the page. */
export function publicUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

export class UplinkWatch {
  private readonly session: MqttSession | undefined;
  private readonly broker: string | null;
  private connectedSinceMs: number | null = null;
  private readonly failures: number[] = [];
  private readonly now: () => number;
  private readonly listeners: [string, (...args: never[]) => void][] = [];

  constructor(session: MqttSession | undefined, broker: string | null, onChange: () => void, now = Date.now) {
    this.session = session;
    this.broker = broker === null ? null : publicUrl(broker);
    this.now = now;
    if (!session) return;
    if (session.connected) this.connectedSinceMs = now();
    this.listen('connect', () => { this.connectedSinceMs = this.now(); onChange(); });
    this.listen('disconnect', () => { this.connectedSinceMs = null; onChange(); });
    this.listen('failure', () => {
      this.failures.push(this.now());
      if (this.failures.length > MAX_KEPT) this.failures.shift();
      onChange();
    });
  }

  private listen(event: 'connect' | 'disconnect' | 'failure', handler: () => void): void {
    this.session!.on(event, handler);
    this.listeners.push([event, handler]);
  }

  get connected(): boolean {
    return this.session?.connected ?? false;
  }

  view(): UplinkView {
    const since = this.now() - HOUR_MS;
    while (this.failures.length && this.failures[0]! < since) this.failures.shift();
    return {
      broker: this.broker,
      connected: this.session?.connected ?? false,
      connectedSinceMs: this.session?.connected ? this.connectedSinceMs : null,
      mqttVersion: this.session ? this.session.mqttVersion : null,
      errorsLastHour: this.failures.length,
    };
  }

  close(): void {
    for (const [event, handler] of this.listeners) this.session?.off(event as 'connect', handler as () => void);
  }
}
