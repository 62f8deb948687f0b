// The device key: made once, mode 0600, never printed, never silently replaced.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from './helpers/cli.ts';

const dir = tempDir();
test.after(() => dir.remove());

async function freshBox(name: string) {
  const state = join(dir.path, name);
  const result = await runCli(['id', '--json', '--state-dir', state]);
  assert.is(result.code, 0, result.stderr);
  return { state, keyPath: join(state, 'device.key'), id: JSON.parse(result.stdout.toString()) };
}

test('first start makes an Ed25519 key, mode 0600, and the private key appears in no output', async () => {
  const state = join(dir.path, 'new');
  const result = await runCli(['sample', '--count', '2', '--out', join(dir.path, 'n.cbor'), '--state-dir', state, '--log-level', 'debug']);
  assert.is(result.code, 0, result.stderr);
  const keyPath = join(state, 'device.key');
  assert.is(statSync(keyPath).mode & 0o777, 0o600);
  assert.is(statSync(state).mode & 0o777, 0o700);
  const pem = readFileSync(keyPath, 'utf8');
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----/);
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const seed = der.subarray(der.length - 32); // PKCS#8 Ed25519: the 32-byte seed ends the structure
  const id = await runCli(['id', '--json', '--state-dir', state]);
  for (const output of [result.stdout.toString('latin1') + result.stderr, id.stdout.toString() + id.stderr]) {
    for (const form of [seed.toString('hex'), seed.toString('base64'), seed.toString('base64url'), pem.split('\n')[1]!]) {
      assert.not.ok(output.includes(form), 'private key material in output');
    }
  }
  // openssl reads the key file: field techs can inspect it with standard tools
  const pub = execFileSync('openssl', ['pkey', '-in', keyPath, '-pubout', '-outform', 'DER']);
  assert.is(pub.subarray(-32).toString('hex'), JSON.parse(id.stdout.toString()).publicKey);
});

test('a key readable by group or others is refused, not replaced', async () => {
  const box = await freshBox('mode');
  const before = readFileSync(box.keyPath);
  chmodSync(box.keyPath, 0o644);
  for (const args of [['id'], ['sample', '--count', '1', '--out', join(dir.path, 'm.cbor')]]) {
    const result = await runCli([...args, '--state-dir', box.state]);
    assert.is(result.code, 1, result.stderr);
    assert.match(result.stderr, /device key .*device\.key is readable or writable by group or others \(mode 0644\)/);
    assert.match(result.stderr, /chmod 600/);
  }
  assert.equal(readFileSync(box.keyPath), before);
  chmodSync(box.keyPath, 0o600);
  assert.equal(JSON.parse((await runCli(['id', '--json', '--state-dir', box.state])).stdout.toString()), box.id);
});

test('a corrupt key gives a clear error and is left as it is', async () => {
  for (const [name, content] of [
    ['garbage', 'this is not a key\n'],
    ['truncated', '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n'],
    ['empty', ''],
  ] as const) {
    const box = await freshBox(`corrupt-${name}`);
    writeFileSync(box.keyPath, content, { mode: 0o600 });
    const result = await runCli(['sample', '--count', '1', '--out', join(dir.path, 'c.cbor'), '--state-dir', box.state]);
    assert.is(result.code, 1, result.stderr);
    assert.match(result.stderr, /device key .*device\.key is corrupt/);
    assert.is(readFileSync(box.keyPath, 'utf8'), content, 'key file changed');
  }
});

test('a key of another type is refused', async () => {
  const box = await freshBox('rsa');
  const pem = execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], { stdio: ['ignore', 'pipe', 'ignore'] });
  writeFileSync(box.keyPath, pem, { mode: 0o600 });
  const result = await runCli(['id', '--state-dir', box.state]);
  assert.is(result.code, 1);
  assert.match(result.stderr, /is a ec key, expected ed25519/);
});

test('a missing key with a recorded identity is an error, never a new key', async () => {
  const box = await freshBox('missing');
  renameSync(box.keyPath, join(dir.path, 'backup.key'));
  const result = await runCli(['id', '--state-dir', box.state]);
  assert.is(result.code, 1);
  assert.match(result.stderr, /device key .* is missing but .*identity\.json records an identity/);
  assert.not.ok(existsSync(box.keyPath));
});

test('a box whose key predates identity.json gets the record on its next start', async () => {
  const box = await freshBox('backfill');
  const { rmSync } = await import('node:fs');
  rmSync(join(box.state, 'identity.json'));
  assert.is((await runCli(['id', '--state-dir', box.state])).code, 0);
  assert.equal(JSON.parse(readFileSync(join(box.state, 'identity.json'), 'utf8')), box.id);
});

test('a replaced key does not continue another device\'s chain', async () => {
  const box = await freshBox('replaced');
  assert.is((await runCli(['sample', '--count', '1', '--out', join(dir.path, 'r.cbor'), '--state-dir', box.state])).code, 0);
  const other = await freshBox('donor');
  writeFileSync(box.keyPath, readFileSync(other.keyPath), { mode: 0o600 });
  const result = await runCli(['sample', '--count', '1', '--out', join(dir.path, 'r2.cbor'), '--state-dir', box.state]);
  assert.is(result.code, 1);
  assert.match(result.stderr, new RegExp(`store holds the chain of device ${box.id.id} but the device key is ${other.id.id}`));
});

test('a read-only state dir: a clear error, exit 1, never a new key', async () => {
  // Root ignores permission bits, so the test mounts the directory read-only.
  const withKey = await freshBox('ro-key');
  assert.is((await runCli(['sample', '--count', '1', '--out', join(dir.path, 'ro0.cbor'), '--state-dir', withKey.state])).code, 0);
  const empty = join(dir.path, 'ro-empty');
  mkdirSync(empty);
  const before = readFileSync(withKey.keyPath);
  const mounted: string[] = [];
  try {
    for (const path of [withKey.state, empty]) {
      execFileSync('mount', ['--bind', path, path]);
      mounted.push(path);
      execFileSync('mount', ['-o', 'remount,ro,bind', path]);
    }
    const noKey = await runCli(['id', '--state-dir', empty]);
    assert.is(noKey.code, 1, noKey.stderr);
    assert.match(noKey.stderr, /state dir .*ro-empty is not writable: it is on a read-only file system/);
    assert.not.ok(existsSync(join(empty, 'device.key')));

    const sample = await runCli(['sample', '--count', '1', '--out', join(dir.path, 'ro.cbor'), '--state-dir', withKey.state]);
    assert.is(sample.code, 1, sample.stderr);
    assert.match(sample.stderr, /state dir .*ro-key is not writable: it is on a read-only file system/);
    // reading the identity still works: a tech can identify a box whose disk went read-only
    const id = await runCli(['id', '--json', '--state-dir', withKey.state]);
    assert.is(id.code, 0, id.stderr);
    assert.equal(JSON.parse(id.stdout.toString()), withKey.id);
  } finally {
    for (const path of mounted.reverse()) execFileSync('umount', [path]);
  }
  assert.equal(readFileSync(withKey.keyPath), before);
  const after = await runCli(['sample', '--count', '1', '--out', join(dir.path, 'ro2.cbor'), '--state-dir', withKey.state]);
  assert.is(after.code, 0, after.stderr);
});

test.run();
