// The gateways sharing one PostgreSQL database, for device affinity (affinity.ts): a lease
// row per gateway in `gateways` (schema version 4), on the database's clock, a
// notification on the `iop_gateways` channel whenever one joins or leaves, and each
// device's ordinal in `device_ordinals`. All of it on a
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
/**
 * Devices' ordinals, made on first sight: the next ones after the highest, in the order
 * asked (every gateway sees every device's status, and the first to ask makes it). Not a
 * sequence: a sequence's value is spent by the insert that then conflicts, and with two
 * gateways asking for every device the ordinals went 1, 3, 5…, all to one gateway. Many
 * devices in one statement: a gateway starting learns every box's retained status at once.
 */
const MAKE_ORDINALS = prepared('iop-make-ordinals',
  `WITH asked AS (SELECT device, min(position) AS position FROM unnest($1::text[]) WITH ORDINALITY AS a(device, position) GROUP BY device),
   unknown AS (SELECT device, row_number() OVER (ORDER BY position) AS k FROM asked
     WHERE NOT EXISTS (SELECT 1 FROM device_ordinals o WHERE o.device = asked.device))
   INSERT INTO device_ordinals (device, ordinal) SELECT device, (SELECT coalesce(max(ordinal), 0) FROM device_ordinals) + k FROM unknown
   ON CONFLICT (device) DO NOTHING`);
const ORDINALS_OF = prepared('iop-ordinals-of', 'SELECT device, ordinal FROM device_ordinals WHERE device = ANY($1::text[])');
const UNIQUE_VIOLATION = '23505';

export class PostgresMembership implements GatewayMembership {
  private readonly url: string;
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private changed: () => void = () => undefined;
  private closed = false;
  /** one statement at a time on the connection: a heartbeat waits for one batch of ordinals at most */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(url: string) {
    this.url = url;
  }

  async open(changed: () => void): Promise<void> {
    this.changed = changed;
    await this.connection();
  }

  heartbeat(name: string, leaseMs: number, alive: boolean): Promise<string[]> {
    return this.serially(async (client) => {
      // The database's clock for every lease: gateways' clocks may differ.
      const { rows } = await client.query<{ name: string; joined: boolean }>(alive ? HEARTBEAT([name, leaseMs]) : LEAVE([name]));
      // Joined (again): the others learn it now, not at their next heartbeat.
      if (rows.some((r) => r.joined)) await client.query(ANNOUNCE([name]));
      return rows.map((r) => r.name);
    });
  }

  ordinals(): Promise<Map<string, number>> {
    return this.serially(async (client) => {
      const { rows } = await client.query<{ device: string; ordinal: string }>('SELECT device, ordinal FROM device_ordinals');
      return new Map(rows.map((r) => [r.device, Number(r.ordinal)]));
    });
  }

  ordinalsOf(devices: string[]): Promise<Map<string, number>> {
    return this.serially(async (client) => {
      for (let attempt = 1; ; attempt++) {
        try {
          await client.query(MAKE_ORDINALS([devices]));
          break;
        } catch (err) {
          // Another gateway took those ordinals at the same moment: the next statement sees them.
          if ((err as { code?: string }).code !== UNIQUE_VIOLATION || attempt >= 10) throw err;
        }
      }
      const { rows } = await client.query<{ device: string; ordinal: string }>(ORDINALS_OF([devices]));
      return new Map(rows.map((r) => [r.device, Number(r.ordinal)]));
    });
  }

  leave(name: string): Promise<void> {
    return this.serially(async (client) => {
      await client.query(LEAVE([name]));
      await client.query(ANNOUNCE([name]));
    });
  }

  private serially<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const done = this.queue.then(async () => work(await this.connection()));
    this.queue = done.catch(() => undefined);
    return done;
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
      // Bounded: a gateway waits on a new device's ordinal (affinity.ts), and a database
      // that stopped answering must not hold it longer than a lease.
      const client = new pg.Client({ connectionString: this.url, application_name: 'iop-gateway-membership', connectionTimeoutMillis: 5000, query_timeout: 5000 });
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
