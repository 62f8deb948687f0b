// A real PostgreSQL server (Debian's `postgresql` package) in a temporary data directory
// on a free loopback port, started and stopped by a test or a bench. PostgreSQL refuses to
// run as root: as root the cluster belongs to `nobody`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, waitForPort } from './mosquitto.ts';

export interface PostgresOptions {
  /** fsync and synchronous commit (off for tests: they kill gateways, not the database) */
  durable?: boolean;
  maxConnections?: number;
}

export interface Postgres {
  port: number;
  /** the postmaster's process id (its backends are its children) */
  pid: number;
  /** a new empty database; its connection URL */
  createDatabase(name?: string): Promise<string>;
  stop(): Promise<void>;
}

const USER = 'iop';

/** The directory of initdb and postgres, or undefined when PostgreSQL is not installed. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

/** The uid/gid to run PostgreSQL as: ourselves, or `nobody` when we are root. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(spawnSync('id', [flag, 'nobody'], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

export async function startPostgres(options: PostgresOptions = {}): Promise<Postgres> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  const dir = mkdtempSync(join(tmpdir(), 'iop-postgres-'));
  const data = join(dir, 'data');
  const user = runAs();
  if (user) {
    chownSync(dir, user.uid, user.gid);
    chmodSync(dir, 0o700);
  }
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', USER, '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], {
    encoding: 'utf8', ...user, cwd: dir,
  });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const settings = [
    '-c', 'listen_addresses=127.0.0.1', '-k', dir, '-c', `max_connections=${options.maxConnections ?? 60}`,
    '-c', 'shared_buffers=32MB', '-c', 'log_min_messages=fatal',
    ...(options.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
  ];
  let child: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    // Another test's server may take the free port first: ours must be the one listening.
    port = await freePort();
    const started = spawn(join(bin, 'postgres'), ['-D', data, '-p', String(port), ...settings], { stdio: ['ignore', 'ignore', 'pipe'], ...user, cwd: dir });
    started.unref();
    (started.stderr as unknown as { unref(): void }).unref();
    let stderr = '';
    started.stderr!.on('data', (c) => (stderr += c));
    try {
      await waitForPort(port, 20_000);
      await ready(port);
      if (started.exitCode !== null) throw new Error(`postgres exited: ${stderr}`);
      child = started;
      break;
    } catch (err) {
      started.kill('SIGKILL');
      if (attempt >= 5) throw new Error(`postgres did not start: ${(err as Error).message}\n${stderr}`);
    }
  }
  process.once('exit', () => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  let databases = 0;
  return {
    port,
    pid: child!.pid!,
    async createDatabase(name = `iop_${process.pid}_${++databases}`) {
      const admin = new pg.Client({ connectionString: url(port, 'postgres') });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url(port, name);
    },
    async stop() {
      const running = child;
      child = undefined;
      if (running && running.exitCode === null) {
        await new Promise<void>((resolve) => {
          running.ref();
          running.once('exit', () => resolve());
          running.kill('SIGINT'); // fast shutdown: ends open sessions
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const url = (port: number, db: string) => `postgres://${USER}@127.0.0.1:${port}/${db}`;

/** The port answers before the server takes sessions (startup, recovery): wait for a query. */
async function ready(port: number): Promise<void> {
  const end = Date.now() + 20_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url(port, 'postgres') });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (Date.now() > end) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
