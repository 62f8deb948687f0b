// `iop-agent console` against a real agent (`iop-agent run` with console.tty on one end
// of a socat pty pair): exit codes, port errors, restart, and the scripted field session
// that pairs a box in three typed commands.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { ConsoleClient } from '../agent/console/client.ts';
import { runCli, tempDir } from './helpers/cli.ts';
import { fieldPairing } from './helpers/field-session.ts';
import { ptyPair, socatMissing, within, type PtyPair } from './helpers/pty.ts';
import { start, type Running } from './helpers/system.ts';

const missing = socatMissing();
const dir = tempDir('iop-console-cli-');
const stateDir = join(dir.path, 'state');
let pty: PtyPair;
let agent: Running;

async function startAgent(): Promise<void> {
  agent = start(['run', '-c', join(dir.path, 'config.yaml')]);
  // Ready once the console answers.
  for (let i = 0; i < 200; i++) {
    const result = await runCli(['console', pty.tech, '--json', 'id'], { timeoutMs: 20_000 });
    if (result.code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the agent's console never answered:\n${agent.stderr()}`);
}

test.before(async () => {
  if (missing) return;
  pty = await ptyPair(dir.path);
  writeFileSync(join(dir.path, 'config.yaml'), `stateDir: ${stateDir}\nsampling: {intervalMs: 200}\nconsole: {tty: ${pty.box}}\n`);
  await within(60_000, 'agent start', startAgent());
});

test.after(async () => {
  await agent?.stop();
  await pty?.unplug();
  dir.remove();
});

test('one command: printed answer and exit 0 or 1; port errors exit 2 with the reason', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  const id = await runCli(['console', pty.tech, '--json', 'id']);
  assert.is(id.code, 0);
  const answer = JSON.parse(id.stdout.toString());
  assert.is(answer.ok, true);
  assert.match(answer.id, /^[a-z2-7]{50,}$/);
  const local = await runCli(['id', '--json', '--state-dir', stateDir]);
  assert.is(JSON.parse(local.stdout.toString()).id, answer.id);

  const status = await runCli(['console', pty.tech, 'status']);
  assert.is(status.code, 0);
  assert.match(status.stdout.toString(), /^sensors +temperature +-?\d/m);
  assert.match(status.stdout.toString(), /^owner +not paired/m);

  const unknown = await runCli(['console', pty.tech, 'shell']);
  assert.is(unknown.code, 1);
  assert.match(unknown.stdout.toString(), /unknown command 'shell': type help/);
  const refused = await runCli(['console', pty.tech, '--json', 'pair', 'finish', '0x' + '11'.repeat(65)]);
  assert.is(refused.code, 1);
  assert.is(JSON.parse(refused.stdout.toString()).code, 'NO_PAIRING');

  const nothing = await runCli(['console', join(dir.path, 'ttyUSB9'), 'status']);
  assert.is(nothing.code, 2);
  assert.match(nothing.stderr, /ttyUSB9: no such device/);
  assert.match(nothing.stderr, /by-id/);

  const holder = await ConsoleClient.open(pty.tech, 115200);
  try {
    const busy = await runCli(['console', pty.tech, 'status']);
    assert.is(busy.code, 2);
    assert.match(busy.stderr, /busy/);
  } finally {
    await holder.close();
  }
});

test('a tech pairs the box in three typed commands', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  const owner = Wallet.createRandom();
  const { typed, output, code, stderr } = await fieldPairing(pty.tech, owner);
  assert.is(code, 0, stderr);
  assert.match(output, /signs this typed data \(eth_signTypedData_v4\) within 15 minutes/);
  assert.match(output, /Then type: pair finish 0x<signature>/);
  assert.match(output, /Paired: owner 0x/);
  assert.is(typed.length, 3);
  assert.ok(existsSync(join(stateDir, 'owner.json')));
  assert.is(JSON.parse(readFileSync(join(stateDir, 'owner.json'), 'utf8')).current.owner, owner.address);
  const status = await runCli(['console', pty.tech, '--json', 'pair', 'status']);
  assert.is(JSON.parse(status.stdout.toString()).owner, owner.address);
});

test('restart: the agent stops with the restart exit code', async () => {
  if (missing) return console.log(`skipped: ${missing}`);
  const answer = await runCli(['console', pty.tech, 'restart']);
  assert.is(answer.code, 0);
  assert.match(answer.stdout.toString(), /Restarting/);
  const result = await within(30_000, 'agent exit', agent.stop('SIGCONT'));
  assert.is(result.code, 75, result.stderr);
  assert.match(result.stderr, /restarting \(asked on the console\)/);
});

test.run();
