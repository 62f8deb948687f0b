// mqtts:// against Mosquitto with certificates made here by openssl: the right CA and
// client certificate connect; a wrong CA or a wrong server name is refused with a
// message that says which.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers/cli.ts';
import { startMosquitto, type Broker } from './helpers/mosquitto.ts';
import { boxConfig, queued, sleep, start, until } from './helpers/system.ts';

const dir = tempDir();
const pki = (name: string) => join(dir.path, name);
let broker: Broker;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

function makeCa(name: string): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-keyout', pki(`${name}.key`), '-out', pki(`${name}.crt`));
}

function makeLeaf(name: string, ca: string, extensions: string): void {
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', pki(`${name}.key`), '-out', pki(`${name}.csr`));
  writeFileSync(pki(`${name}.ext`), extensions);
  openssl('x509', '-req', '-in', pki(`${name}.csr`), '-CA', pki(`${ca}.crt`), '-CAkey', pki(`${ca}.key`), '-CAcreateserial', '-days', '2', '-extfile', pki(`${name}.ext`), '-out', pki(`${name}.crt`));
}

test.before(async () => {
  makeCa('test-ca');
  makeCa('other-ca');
  makeLeaf('broker', 'test-ca', 'subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n');
  makeLeaf('box', 'test-ca', 'extendedKeyUsage = clientAuth\n');
  broker = await startMosquitto({ tls: { ca: pki('test-ca.crt'), cert: pki('broker.crt'), key: pki('broker.key'), requireClientCert: true } });
});
test.after(async () => {
  await broker.stop();
  dir.remove();
});

const tls = (overrides: Record<string, string> = {}) => ({ ca: pki('test-ca.crt'), cert: pki('box.crt'), key: pki('box.key'), ...overrides });

test('with the test CA and a client certificate the box connects over TLS and delivers', async () => {
  assert.match(broker.url, /^mqtts:/);
  const box = start(['run', '--config', boxConfig(dir.path, 'good', { ack: 'broker', tls: tls() }), '--broker', broker.url]);
  await until('connected over TLS', () => /connected to mqtts:/.test(box.stderr()), 15_000);
  await sleep(1000);
  const result = await box.stop();
  assert.is(result.code, 0, result.stderr);
  assert.not.match(result.stderr, /error/);
  assert.ok((await queued(join(dir.path, 'good'))) <= 1, 'readings were acknowledged by the broker');
});

test('a broker certificate from another CA is refused, saying so', async () => {
  const box = start(['run', '--config', boxConfig(dir.path, 'wrong-ca', { ack: 'broker', tls: tls({ ca: pki('other-ca.crt') }) }), '--broker', broker.url]);
  await until('the TLS error', () => /TLS:/.test(box.stderr()), 15_000);
  await sleep(500);
  const result = await box.stop();
  assert.match(result.stderr, /TLS: the certificate of mqtts:\/\/127\.0\.0\.1:\d+ is not signed by a trusted CA .*check uplink\.tls\.ca \(.*other-ca\.crt\)/);
  assert.not.match(result.stderr, /connected to/);
  assert.ok((await queued(join(dir.path, 'wrong-ca'))) >= 1, 'readings stay queued');
});

test('a broker certificate for another name is refused, saying so', async () => {
  const box = start(['run', '--config', boxConfig(dir.path, 'wrong-name', { ack: 'broker', tls: tls({ servername: 'gateway.example' }) }), '--broker', broker.url]);
  await until('the TLS error', () => /TLS:/.test(box.stderr()), 15_000);
  const result = await box.stop();
  assert.match(result.stderr, /TLS: the certificate of mqtts:\/\/127\.0\.0\.1:\d+ is not for that host name/);
  assert.not.match(result.stderr, /connected to/);
});

test('a missing CA file is a configuration error, exit 2', async () => {
  const box = start(['run', '--config', boxConfig(dir.path, 'no-ca', { tls: tls({ ca: pki('nope.crt') }) }), '--broker', broker.url]);
  const result = await box.stop('SIGCONT');
  assert.is(result.code, 2);
  assert.match(result.stderr, /uplink tls\.ca file .*nope\.crt: ENOENT/);
});

test.run();
