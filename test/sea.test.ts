// The single executables: built from this checkout, the arm64 one run under
// qemu-aarch64-static, its output verified by the x64 one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, openSync, readSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { ROOT, jsonLines, runCli, tempDir } from './helpers/cli.ts';
import { freePort } from './helpers/mosquitto.ts';
import { start, until } from './helpers/system.ts';

const dir = tempDir('iop-sea-');
test.after(() => dir.remove());

const SYSROOT = process.env.QEMU_LD_PREFIX ?? '/usr/aarch64-linux-gnu';
const x64 = join(dir.path, 'dist', 'iop-agent-linux-x64');
const arm64 = join(dir.path, 'dist', 'iop-agent-linux-arm64');
const onArm = (args: string[]) => runCli(args, { command: ['qemu-aarch64-static', '-L', SYSROOT, arm64], timeoutMs: 120_000 });
const onX64 = (args: string[], input?: Buffer) => runCli(args, { command: [x64], ...(input ? { input } : {}) });

function elfMachine(file: string): number {
  const fd = openSync(file, 'r');
  const header = Buffer.alloc(20);
  readSync(fd, header, 0, 20, 0);
  closeSync(fd);
  return header.readUInt16LE(18);
}

test('npm run build makes x64 and arm64 executables and the verify library', () => {
  execFileSync(process.execPath, [join(ROOT, 'images', 'build.ts'), '--out', join(dir.path, 'dist')], { stdio: 'pipe' });
  assert.is(elfMachine(x64), 62, 'x86-64');
  assert.is(elfMachine(arm64), 183, 'AArch64');
  assert.ok(existsSync(join(dir.path, 'dist', 'iop-verify.mjs')));
});

test('the arm64 executable runs under qemu: --version, id, sample; the x64 build verifies its output', async () => {
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
  const v = await onArm(['--version']);
  assert.is(v.code, 0, v.stderr);
  assert.is(v.stdout.toString().trim(), `iop-agent ${version}`);

  const state = join(dir.path, 'arm-state');
  const out = join(dir.path, 'arm.cbor');
  const sample = await onArm(['sample', '--count', '3', '--out', out, '--state-dir', state]);
  assert.is(sample.code, 0, sample.stderr);
  const id = JSON.parse((await onArm(['id', '--json', '--state-dir', state])).stdout.toString());

  const verify = await onX64(['verify', out, '--pubkey', id.publicKey]);
  assert.is(verify.code, 0, verify.stderr);
  const lines = jsonLines(verify.stdout);
  assert.equal(lines.map((l) => [l.device, l.seq, l.valid, l.chain]), [[id.id, 0, true, 'start'], [id.id, 1, true, 'ok'], [id.id, 2, true, 'ok']]);
  assert.is(lines[0].records[0].n, 'temperature');
});

test('the x64 executable needs nothing from the checkout', async () => {
  const result = await runCli(['config'], { command: [x64], env: { NODE_PATH: '/nonexistent' } });
  assert.is(result.code, 0, result.stderr);
  const help = await onX64(['verify', '--help']);
  assert.match(help.stdout.toString(), /Usage: iop-agent verify/);
});

test('the x64 executable serves the status page from its bundle apart: assets, the whole state gzip-compressed, a WebSocket told to sync', async () => {
  const port = await freePort();
  const agent = start(['run', '--state-dir', join(dir.path, 'status-state'), '--interval', '500', '--status', `127.0.0.1:${port}`], { command: [x64] });
  try {
    await until('the status page', () => /status page on/.test(agent.stderr()), 20_000);
    assert.match(await (await fetch(`http://127.0.0.1:${port}/`)).text(), /<main>/);
    const state = await fetch(`http://127.0.0.1:${port}/state.json`);
    assert.is(state.headers.get('content-encoding'), 'gzip');
    assert.ok('sensors' in ((await state.json()) as { state: object }).state);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    try {
      const first = await new Promise<string>((resolve, reject) => {
        ws.once('message', (data) => resolve(String(data)));
        ws.once('error', reject);
        setTimeout(() => reject(new Error('no message on the WebSocket within 10 s')), 10_000).unref();
      });
      assert.is(JSON.parse(first).t, 'sync');
    } finally {
      ws.terminate();
    }
  } finally {
    await agent.stop();
  }
});

test('the verify library bundle verifies a message on its own', async () => {
  const state = join(dir.path, 'lib-state');
  const out = join(dir.path, 'lib.cbor');
  assert.is((await onX64(['sample', '--count', '2', '--out', out, '--state-dir', state])).code, 0);
  const lib = await import(join(dir.path, 'dist', 'iop-verify.mjs'));
  const verifier = new lib.ReadingVerifier();
  const items = lib.splitCborSequence(new Uint8Array(readFileSync(out)));
  const results = items.map((item: { bytes: Uint8Array }) => verifier.verify(item.bytes));
  assert.equal(results.map((r: { valid: boolean; chain: string }) => [r.valid, r.chain]), [[true, 'start'], [true, 'ok']]);
});

test.run();
