// Tells systemd how the agent is doing (sd_notify, Type=notify): READY=1 once it runs,
// WATCHDOG=1 from the main loop at half of WATCHDOG_USEC (an event loop that hangs stops
// the pings, and systemd restarts the agent), STATUS= one-liners, STOPPING=1 on the way out.
//
// The protocol is one datagram to the AF_UNIX socket in $NOTIFY_SOCKET, which Node cannot
// send: node:dgram has no AF_UNIX datagram sockets (nodejs/node#29339), and an addon is
// what the agent avoids. So each message goes through Debian's `systemd-notify`, part of
// systemd itself and therefore present wherever systemd set NOTIFY_SOCKET. Its message
// comes from another PID than the agent's, hence NotifyAccess=all in the unit; and since
// systemd 246 it waits on a barrier until the manager has read the message, so its quick
// exit no longer loses the message (the race sd_notify(3) describes). `--pid` is not
// passed: it would only say MAINPID= (already the agent), and sending on behalf of the
// agent's PID needs privileges the agent's user lacks. docs/systemd.md has the choice.
import { spawn } from 'node:child_process';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';

/** Delivers one notification (KEY=VALUE lines); resolves when it has been handed over. */
export type NotifySender = (lines: readonly string[], socket: string) => Promise<void>;

export interface ServiceNotifier {
  /** NOTIFY_SOCKET was set: messages go to the service manager. */
  readonly enabled: boolean;
  /** Milliseconds between watchdog pings, when systemd asked for them. */
  readonly watchdogEveryMs: number | undefined;
  ready(status: string): void;
  stopping(status: string): void;
  /** Resolves once everything sent so far is delivered, or after `timeoutMs`. */
  flush(timeoutMs?: number): Promise<void>;
  /** Stops the pings. */
  close(): void;
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  pid?: number;
  log: Logger;
  /** A one-line summary of the agent, sent as STATUS= when it changes. */
  describe: () => string;
  send?: NotifySender;
}

/** STATUS= is refreshed this often (when changed) on a service without a watchdog. */
const STATUS_EVERY_MS = 30_000;

/** systemd's sd_watchdog_enabled(): the interval asked for, if it is meant for this process. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isSafeInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  // Half the timeout, as sd_watchdog_enabled(3) advises: a late tick still arrives in time.
  return Math.max(1, Math.floor(usec / 2000));
}

export function createServiceNotifier(options: NotifierOptions): ServiceNotifier {
  const env = options.env ?? process.env;
  const socket = env.NOTIFY_SOCKET;
  const watchdogEveryMs = socket ? watchdogIntervalMs(env, options.pid ?? process.pid) : undefined;
  if (env === process.env) {
    // sd_notify's unset_environment: the agent's own children must not talk to systemd.
    delete process.env.NOTIFY_SOCKET;
    delete process.env.WATCHDOG_USEC;
    delete process.env.WATCHDOG_PID;
  }
  if (!socket || !/^[/@]/.test(socket)) {
    if (socket) options.log.warn(`NOTIFY_SOCKET '${socket}' is not an AF_UNIX socket path: not notifying systemd`);
    return { enabled: false, watchdogEveryMs: undefined, ready() {}, stopping() {}, flush: async () => {}, close() {} };
  }
  const send = options.send ?? sendWithSystemdNotify;
  // One message in flight at a time; what comes meanwhile is merged (a later value wins),
  // so a slow manager sees a few combined messages, never a pile of processes.
  let pending = new Map<string, string>();
  let inFlight: Promise<void> | undefined;
  let broken = false;
  let failures = 0;
  let lastStatus = '';
  const idle: (() => void)[] = [];

  const pump = () => {
    if (inFlight || pending.size === 0 || broken) {
      if (!inFlight) for (const resolve of idle.splice(0)) resolve();
      return;
    }
    const lines = [...pending].map(([key, value]) => `${key}=${value}`);
    pending = new Map();
    inFlight = send(lines, socket).catch((err: unknown) => {
      // Without the tool nothing will ever get through; another failure may be passing.
      broken = err instanceof MissingNotifyTool;
      if (broken || failures++ % 100 === 0) options.log.warn(`cannot notify systemd: ${errorMessage(err)}${broken ? ': readiness, watchdog and status are not sent' : ''}`);
    }).finally(() => {
      inFlight = undefined;
      pump();
    });
  };
  const post = (entries: Record<string, string>) => {
    for (const [key, value] of Object.entries(entries)) pending.set(key, value);
    pump();
  };
  const statusIfChanged = (): Record<string, string> => {
    const status = oneLine(options.describe());
    if (status === lastStatus) return {};
    lastStatus = status;
    return { STATUS: status };
  };

  const timer = setInterval(() => {
    post({ ...(watchdogEveryMs ? { WATCHDOG: '1' } : {}), ...statusIfChanged() });
  }, Math.min(watchdogEveryMs ?? STATUS_EVERY_MS, STATUS_EVERY_MS));
  timer.unref();
  if (watchdogEveryMs) post({ WATCHDOG: '1' });

  return {
    enabled: true,
    watchdogEveryMs,
    ready(status) {
      lastStatus = oneLine(status);
      post({ READY: '1', STATUS: lastStatus });
    },
    stopping(status) {
      clearInterval(timer);
      pending.delete('WATCHDOG');
      lastStatus = oneLine(status);
      post({ STOPPING: '1', STATUS: lastStatus });
    },
    flush(timeoutMs = 2_000) {
      if (!inFlight && pending.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        idle.push(() => { clearTimeout(t); resolve(); });
      });
    },
    close() {
      clearInterval(timer);
    },
  };
}

class MissingNotifyTool extends Error {
  constructor() {
    super('systemd-notify not found (it comes with systemd)');
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, '; ').slice(0, 200);
}

/** systemd-notify KEY=VALUE...: it sends one datagram and waits for the manager to read it. */
const sendWithSystemdNotify: NotifySender = (lines, socket) => new Promise((resolve, reject) => {
  const child = spawn('systemd-notify', [...lines], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { NOTIFY_SOCKET: socket, PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { if (stderr.length < 500) stderr += chunk.toString(); });
  child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new MissingNotifyTool() : err));
  child.once('close', (code) => {
    if (code === 0) resolve();
    else reject(new Error(`systemd-notify exited ${code}: ${stderr.trim()}`));
  });
});
