// The agent under systemd: sd_notify datagrams on $NOTIFY_SOCKET (READY=1, periodic
// WATCHDOG=1 at half of WATCHDOG_USEC, STATUS=, STOPPING=1), read by a real AF_UNIX
// datagram socket bound by python3; and journald priority prefixes when stderr is the
// stream $JOURNAL_STREAM names.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CLI, ROOT, runCli, tempDir } from './helpers/cli.ts';
import { start, until } from './helpers/system.ts';
import { hasCommand, testIf } from './helpers/requires.ts';
import { watchdogIntervalMs, createServiceNotifier } from '../agent/systemd/notify.ts';
import { silentLogger } from '../agent/log.ts';

const dir = tempDir();
test.after(() => dir.remove());

/** Receives datagrams on a fresh AF_UNIX socket; closes the fds systemd-notify's barrier passes. */
const RECEIVER = `
import array, json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("BOUND"), flush=True)
while True:
    msg, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(64))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print(json.dumps(msg.decode()), flush=True)
`;

async function notifySocket(path: string): Promise<{ messages: string[]; child: ChildProcess }> {
  const child = spawn('python3', ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => messages.push(JSON.parse(line)));
  await until('the notify socket bound', () => messages.includes('BOUND'), 10_000);
  return { messages, child };
}

const missingNotify = !hasCommand('python3') ? 'needs python3 (a test AF_UNIX datagram socket)'
  : !hasCommand('systemd-notify') ? 'needs systemd-notify (Debian: systemd)' : undefined;

testIf(missingNotify, 'under Type=notify the agent says READY=1 once sampling, pings WATCHDOG=1 at half of WATCHDOG_USEC, and STOPPING=1 on SIGTERM', async () => {
  const socketPath = join(dir.path, 'notify.sock');
  const { messages, child } = await notifySocket(socketPath);
  try {
    // 400 ms watchdog: a ping every 200 ms
    const agent = start(['run', '--state-dir', join(dir.path, 'box'), '--interval', '100'], { env: { NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '400000' } });
    const notes = () => messages.flatMap((m) => m.split('\n'));
    await until('READY=1', () => notes().includes('READY=1'), 20_000);
    const ready = messages.find((m) => m.split('\n').includes('READY=1'))!;
    assert.match(ready, /^STATUS=\d+ readings queued, no uplink, sensors 4\/4 ok$/m);
    assert.match(agent.stderr(), /device [a-z2-7]+: 4 sensors/, 'ready only after the start line');
    const pingsAtReady = notes().filter((n) => n === 'WATCHDOG=1').length;
    await until('three more watchdog pings', () => notes().filter((n) => n === 'WATCHDOG=1').length >= pingsAtReady + 3, 10_000);
    const result = await agent.stop('SIGTERM');
    assert.is(result.code, 0, result.stderr);
    await until('STOPPING=1', () => notes().includes('STOPPING=1'), 5_000);
    assert.ok(notes().includes('STATUS=stopping'));
    // nothing but the protocol's own variables (and systemd-notify's barrier)
    for (const note of notes().filter((n) => n !== 'BOUND' && n !== '')) assert.match(note, /^(READY|WATCHDOG|STATUS|STOPPING|BARRIER)=/, JSON.stringify(note));
  } finally {
    child.kill();
  }
});

testIf(missingNotify, 'an agent whose event loop hangs stops pinging the watchdog (systemd would restart it)', async () => {
  const socketPath = join(dir.path, 'hang.sock');
  const { messages, child } = await notifySocket(socketPath);
  // a preloaded module makes SIGUSR2 hang the agent's event loop for good
  const hook = join(dir.path, 'hang-on-usr2.mjs');
  writeFileSync(hook, "process.on('SIGUSR2', () => { for (;;) {} });\n");
  const agent = start(['run', '--state-dir', join(dir.path, 'hung'), '--interval', '100'],
    { command: [process.execPath, '--import', hook, CLI], env: { NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '400000' } });
  try {
    const pings = () => messages.filter((m) => m.split('\n').includes('WATCHDOG=1')).length;
    await until('READY=1 and two pings', () => messages.some((m) => m.startsWith('READY=1')) && pings() >= 2, 20_000);
    agent.child.kill('SIGUSR2');
    // at most the ping already on its way when the loop stopped
    await new Promise((resolve) => setTimeout(resolve, 500));
    const atHang = pings();
    await new Promise((resolve) => setTimeout(resolve, 2000)); // ten ping periods
    assert.is(pings(), atHang, 'no ping from a hung event loop');
    assert.is(agent.child.exitCode, null, 'still running, only hung');
  } finally {
    await agent.stop('SIGKILL');
    child.kill();
  }
});

test('the watchdog interval is half of WATCHDOG_USEC, and only for the process WATCHDOG_PID names', () => {
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42), 15_000);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 15_000);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '41' }, 42), undefined);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }, 42), undefined);
  assert.is(watchdogIntervalMs({}, 42), undefined);
});

test('notifications wait for the one in flight and are merged meanwhile; without NOTIFY_SOCKET nothing is sent', async () => {
  const sent: string[][] = [];
  let release: (() => void) | undefined;
  const notifier = createServiceNotifier({
    env: { NOTIFY_SOCKET: '/run/test.sock' }, log: silentLogger, describe: () => 'fine',
    send: (lines) => { sent.push([...lines]); return new Promise((resolve) => { release = resolve; }); },
  });
  notifier.ready('up');
  notifier.stopping('first');
  notifier.stopping('second');
  assert.equal(sent, [['READY=1', 'STATUS=up']]);
  release!();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(sent[1], ['STOPPING=1', 'STATUS=second']);
  release!();
  await notifier.flush(1000);
  notifier.close();

  const off = createServiceNotifier({ env: {}, log: silentLogger, describe: () => 'x', send: () => { throw new Error('sent'); } });
  off.ready('up');
  assert.is(off.enabled, false);
});

test('with stderr on the stream JOURNAL_STREAM names, every log line carries its syslog priority and no timestamp; elsewhere, timestamps', async () => {
  const config = join(dir.path, 'journald.json');
  writeFileSync(config, JSON.stringify({
    stateDir: join(dir.path, 'journald'),
    sampling: { intervalMs: 100 },
    sensors: [{ type: 'simulated', name: 'fine', quantity: 'temperature' }, { type: 'simulated', name: 'broken', quantity: 'humidity', failureRate: 1 }],
  }));
  const runWithStderrFile = async (file: string, journalStream: (fd: number) => string) => {
    const fd = openSync(file, 'w');
    try {
      const child = spawn(process.execPath, [CLI, 'run', '--config', config], {
        cwd: ROOT, stdio: ['ignore', 'ignore', fd], env: { ...process.env, IOP_AGENT_CONFIG: '', JOURNAL_STREAM: journalStream(fd) },
      });
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      await until('a sensor failure logged', () => /broken/.test(readFileSync(file, 'utf8')), 20_000);
      child.kill('SIGTERM');
      assert.is(await exited, 0);
    } finally {
      closeSync(fd);
    }
    return readFileSync(file, 'utf8').trimEnd().split('\n');
  };

  const journal = await runWithStderrFile(join(dir.path, 'journal.log'), (fd) => { const s = fstatSync(fd); return `${s.dev}:${s.ino}`; });
  for (const line of journal) assert.match(line, /^<[0-7]>[-a-z/]+: /, line);
  assert.ok(journal.some((l) => /^<6>run: device /.test(l)), journal.join('\n'));
  assert.ok(journal.some((l) => /^<4>run\/sampler: .*broken/.test(l)), journal.join('\n'));

  // JOURNAL_STREAM inherited but stderr redirected elsewhere: plain lines
  const plain = await runWithStderrFile(join(dir.path, 'plain.log'), () => '1:2');
  for (const line of plain) assert.match(line, /^\d{4}-\d\d-\d\dT\S+Z (debug|info |warn |error) /, line);
});

test('the unit (Buildroot and Debian share it) waits for READY=1, accepts systemd-notify\'s messages and sets a watchdog', () => {
  const unit = readFileSync(join(ROOT, 'buildroot', 'package', 'iop-agent', 'iop-agent.service'), 'utf8');
  assert.match(unit, /^Type=notify$/m);
  assert.match(unit, /^NotifyAccess=all$/m, 'systemd-notify is a child of the agent, not its main PID');
  assert.match(unit, /^WatchdogSec=\d+$/m);
  assert.match(unit, /^RestrictAddressFamilies=.*\bAF_UNIX\b/m, 'the notify socket is AF_UNIX');
});

test('iop-agent run --help names --metrics', async () => {
  const help = await runCli(['run', '--help']);
  assert.match(help.stdout.toString() + help.stderr, /--metrics ADDR/);
});

test.run();
