// A real Mosquitto broker on a free loopback port (or in a network namespace), started
// and stopped by a test or a bench: harness/ holds what both run against.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BrokerOptions {
  port?: number;
  persistence?: boolean;
  tls?: { ca: string; cert: string; key: string; requireClientCert?: boolean };
  /** more mosquitto.conf lines */
  extra?: string[];
  /** log connections to this file (readable through log()) */
  logFile?: string;
  /** run inside this network namespace (listening on its own loopback) */
  netns?: string;
}

export interface Broker {
  port: number;
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  kill(): Promise<void>;
  log(): string;
  /** the broker's process id while it runs (a bench reads its CPU time from /proc) */
  pid(): number | undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export async function startMosquitto(options: BrokerOptions = {}): Promise<Broker> {
  // Test files run side by side: a port found free can be taken by another file's broker
  // before ours binds it. Ours must be the one listening, or it tries another port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(options.port ?? await freePort(), options);
    } catch (err) {
      if (options.port !== undefined || attempt >= 5) throw err;
    }
  }
}

async function startOn(port: number, options: BrokerOptions): Promise<Broker> {
  const dir = mkdtempSync(join(tmpdir(), 'iop-mosquitto-'));
  const config = [
    `listener ${port} 127.0.0.1`,
    'user root', // running as root, mosquitto would drop to its own user and lose access to the test's files
    'allow_anonymous true',
    `persistence ${options.persistence ? 'true' : 'false'}`,
    `persistence_location ${dir}/`,
    'max_queued_messages 100000',
    'max_inflight_messages 0',
    ...(options.logFile ? [`log_dest file ${options.logFile}`, 'log_type all'] : options.netns ? ['log_dest stderr', 'log_type information'] : ['log_dest none']),
    ...(options.extra ?? []),
  ];
  if (options.tls) {
    config.push(`cafile ${options.tls.ca}`, `certfile ${options.tls.cert}`, `keyfile ${options.tls.key}`);
    if (options.tls.requireClientCert) config.push('require_certificate true');
  }
  writeFileSync(join(dir, 'mosquitto.conf'), config.join('\n') + '\n');
  let child: ChildProcess | undefined;
  const broker: Broker = {
    port,
    url: `${options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    async start() {
      const command = [...(options.netns ? ['ip', 'netns', 'exec', options.netns] : []), 'mosquitto', '-c', join(dir, 'mosquitto.conf')];
      const started = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
      child = started;
      // A broker a failed test left running must not keep the test process alive.
      started.unref();
      (started.stderr as unknown as { unref(): void }).unref();
      let stderr = '';
      started.stderr!.on('data', (chunk) => (stderr += chunk));
      if (options.netns) {
        // The port is in another namespace: the broker's own log says when it listens.
        const end = Date.now() + 10_000;
        while (!/listen socket on port/.test(stderr)) {
          if (Date.now() > end || started.exitCode !== null) throw new Error(`mosquitto in ${options.netns} did not start: ${stderr}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      } else {
        await waitForPort(port, 10_000).catch((err) => { throw new Error(`${err.message}\n${stderr}`); });
      }
      await new Promise((resolve) => setTimeout(resolve, 150));
      if (started.exitCode !== null) throw new Error(`mosquitto on port ${port} exited: ${stderr}`);
    },
    async stop() {
      await ending(child, 'SIGTERM');
      child = undefined;
    },
    async kill() {
      await ending(child, 'SIGKILL');
      child = undefined;
    },
    pid: () => child?.pid,
    log() {
      try {
        return options.logFile ? readFileSync(options.logFile, 'utf8') : '';
      } catch {
        return '';
      }
    },
  };
  await broker.start();
  process.once('exit', () => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return broker;
}

function ending(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.ref(); // keep the test process alive until the broker is gone
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => { socket.end(); resolve(true); });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
