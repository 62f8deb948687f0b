// The gateways sharing one PostgreSQL database, for device affinity (affinity.ts): a lease
// row per gateway in `gateways` (schema version 4), on the database's clock, and a
// notification on the `iop_gateways` channel whenever one joins or leaves. All of it on a
// connection of its own, not the store's pool: a heartbeat queued behind the store's
// transactions and receipts' reads (seconds, while a backlog drains) let leases run out.
import pg from 'pg';
import type { GatewayMembership } from './affinity.ts';
import { prepared } from './postgres-step.ts';

const CHANNEL = 'iop_gateways';
/**
 * Renews this gateway's lease; the gateways alive (itself included: the statement's
 * select does not see its upsert), and whether its lease had run out or never was.
 */
const HEARTBEAT = prepared('iop-heartbeat',
  `WITH renewed AS (INSERT INTO gateways (name, expires) VALUES ($1, now() + $2::float8 * interval '1 millisecond')
     ON CONFLICT (name) DO UPDATE SET expires = excluded.expires RETURNING name)
   SELECT name, NOT EXISTS (SELECT 1 FROM gateways WHERE name = $1 AND expires > now()) AS joined FROM renewed
   UNION ALL SELECT name, false FROM gateways WHERE expires > now() AND name <> $1 ORDER BY name`);
/** Gives this gateway's lease up; the gateways still alive. */
const LEAVE = prepared('iop-leave',
  `WITH gone AS (DELETE FROM gateways WHERE name = $1)
   SELECT name, false AS joined FROM gateways WHERE expires > now() AND name <> $1 ORDER BY name`);
const ANNOUNCE = prepared('iop-announce', `SELECT pg_notify('${CHANNEL}', $1)`);

export class PostgresMembership implements GatewayMembership {
  private readonly url: string;
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private changed: () => void = () => undefined;
  private closed = false;

  constructor(url: string) {
    this.url = url;
  }

  async open(changed: () => void): Promise<void> {
    this.changed = changed;
    await this.connection();
  }

  async heartbeat(name: string, leaseMs: number, alive: boolean): Promise<string[]> {
    const client = await this.connection();
    // The database's clock for every lease: gateways' clocks may differ.
    const { rows } = await client.query<{ name: string; joined: boolean }>(alive ? HEARTBEAT([name, leaseMs]) : LEAVE([name]));
    // Joined (again): the others learn it now, not at their next heartbeat.
    if (rows.some((r) => r.joined)) await client.query(ANNOUNCE([name]));
    return rows.map((r) => r.name);
  }

  async leave(name: string): Promise<void> {
    const client = await this.connection();
    await client.query(LEAVE([name]));
    await client.query(ANNOUNCE([name]));
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client ?? await this.connecting?.catch(() => undefined);
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  /** The connection, made again after it broke (notifications missed meanwhile: heartbeats catch up). */
  private connection(): Promise<pg.Client> {
    if (this.closed) return Promise.reject(new Error('membership closed'));
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.url, application_name: 'iop-gateway-membership' });
      const lost = () => {
        if (this.client === client) this.client = undefined;
      };
      client.on('error', lost);
      client.on('end', lost);
      client.on('notification', () => this.changed());
      try {
        await client.connect();
        await client.query(`LISTEN ${CHANNEL}`);
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      }
      this.client = client;
      return client;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }
}
