// coalesceWrites (agent/uplink/write-coalescer.ts): what is written in one event-loop turn
// reaches the socket as one write, the same bytes in the same order; a write with a
// callback, end() and a socket that needs to drain behave as without it.
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import mqtt from 'mqtt';
import { coalesceWrites } from '../agent/uplink/write-coalescer.ts';

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A TCP connection on loopback; the server side's bytes are gathered until it ends. */
async function connection(): Promise<{ client: Socket; received: Promise<Buffer>; server: Server; serverSocket: Promise<Socket> }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const serverSocket = once(server, 'connection').then(([s]) => s as Socket);
  const client = createConnection({ port: (server.address() as { port: number }).port, host: '127.0.0.1' });
  await new Promise((resolve) => client.once('connect', resolve));
  const received = serverSocket.then(async (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    await once(s, 'end');
    return Buffer.concat(chunks);
  });
  return { client, received, server, serverSocket };
}

/** Counts the writes that reach the socket itself (installed before coalesceWrites wraps it). */
function countWrites(stream: Writable): Uint8Array[] {
  const writes: Uint8Array[] = [];
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((...args: unknown[]) => {
    writes.push(args[0] as Uint8Array);
    return write(...args);
  }) as Writable['write'];
  return writes;
}

const withTimeout = <T>(promise: Promise<T>, ms = 10_000) => Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms).unref())]);

test('the pieces written in one turn leave in one write, in order; the next turn in another', () => withTimeout((async () => {
  const { client, received, server } = await connection();
  const writes = countWrites(client);
  coalesceWrites(client);
  const expected: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const head = Buffer.from([0x30, i & 0xff]);
    const text = `piece ${i} é`;
    assert.ok(client.write(head));
    assert.ok(client.write(text));
    expected.push(head, Buffer.from(text, 'utf8'));
  }
  // More than the turn's first buffer holds: it grows, the bytes held so far kept.
  const large = 'é€'.repeat(20_000);
  const bytes = Buffer.alloc(20_000, 7);
  client.write(large);
  client.write(bytes);
  expected.push(Buffer.from(large, 'utf8'), bytes);
  assert.is(writes.length, 0, 'nothing written before the turn ends');
  await turn();
  assert.is(writes.length, 1, 'one write for the turn');
  client.write(Buffer.from('next turn'), undefined);
  client.write('latin1 é', 'latin1');
  expected.push(Buffer.from('next turn'), Buffer.from('latin1 é', 'latin1'));
  await turn();
  assert.is(writes.length, 2);
  client.end();
  assert.equal(await received, Buffer.concat(expected));
  server.close();
})()));

test('a write with a callback goes after what is held, and gets its callback', () => withTimeout((async () => {
  const { client, received, server } = await connection();
  coalesceWrites(client);
  client.write('first ');
  const written = new Promise<void>((resolve, reject) => client.write('second', (err) => (err ? reject(err) : resolve())));
  await written;
  client.end();
  assert.is((await received).toString(), 'first second');
  server.close();
})()));

test('end() sends what is held first', () => withTimeout((async () => {
  const { client, received, server } = await connection();
  coalesceWrites(client);
  client.write('held ');
  client.write('then ended');
  client.end();
  assert.is((await received).toString(), 'held then ended');
  server.close();
})()));

test('a write answers false while the stream needs to drain, and the held pieces still leave', () => withTimeout((async () => {
  // A stream that takes a write only when told: its buffer fills.
  const taken: Buffer[] = [];
  let release: (() => void) | undefined;
  const slow = new Writable({
    highWaterMark: 8,
    write(chunk: Buffer, _encoding, callback) {
      taken.push(chunk);
      release = callback;
    },
  });
  slow.write(Buffer.alloc(16)); // past the high-water mark: the stream needs to drain
  assert.ok(slow.writableNeedDrain);
  coalesceWrites(slow);
  assert.is(slow.write('a'), false, 'the stream needs to drain: the writer waits');
  await turn();
  const drained = once(slow, 'drain');
  while (taken.length < 2 || release) {
    const done = release;
    release = undefined;
    done?.();
    await turn();
  }
  await drained;
  assert.is(slow.write('b'), true, 'drained: the writer goes on');
  await turn();
  (release as (() => void) | undefined)?.();
  assert.equal(Buffer.concat(taken), Buffer.concat([Buffer.alloc(16), Buffer.from('ab')]));
})()));

test('an MQTT client on a coalescing socket: its packets of a turn in one write, understood by the other side', () => withTimeout((async () => {
  const { client: socket, server, serverSocket } = await connection();
  const writes = countWrites(socket);
  coalesceWrites(socket);
  // The other side: a minimal broker answering CONNECT and counting PUBLISH packets.
  const peer = await serverSocket;
  const { default: mqttPacket } = await import('mqtt-packet');
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  const topics: string[] = [];
  parser.on('packet', (packet: { cmd: string; topic?: string }) => {
    if (packet.cmd === 'connect') peer.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false }, { protocolVersion: 5 }));
    if (packet.cmd === 'publish') topics.push(packet.topic!);
  });
  peer.on('data', (chunk: Buffer) => parser.parse(chunk));
  const client = new mqtt.MqttClient(() => socket, { protocolVersion: 5, reconnectPeriod: 0, writeCache: false });
  await new Promise((resolve) => client.once('connect', resolve));
  const before = writes.length;
  for (let i = 0; i < 50; i++) client.publish(`t/${i}`, `payload ${i}`, { qos: 0 });
  await turn();
  assert.is(writes.length - before, 1, '50 packets, one write');
  while (topics.length < 50) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(topics, Array.from({ length: 50 }, (_, i) => `t/${i}`));
  client.end(true);
  peer.destroy();
  server.close();
})()));

test.run();
