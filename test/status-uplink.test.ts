// What the status page says of the MQTT uplink: since when it is connected, its MQTT
// version, failures in the last hour, and the broker URL without its credentials.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventEmitter } from 'node:events';
import type { MqttSession } from '../agent/uplink/session.ts';
import { publicUrl, UplinkWatch } from '../agent/status/uplink-watch.ts';

function fakeSession() {
  const session = new EventEmitter() as EventEmitter & { connected: boolean; mqttVersion: string };
  session.connected = false;
  session.mqttVersion = '5';
  return session;
}

test('connected since, failures counted for an hour, listeners removed on close', () => {
  const session = fakeSession();
  let now = 1_000_000;
  let changes = 0;
  const watch = new UplinkWatch(session as unknown as MqttSession, 'mqtts://user:pw@broker.example:8883', () => changes++, () => now);
  assert.equal(watch.view(), { broker: 'mqtts://broker.example:8883', connected: false, connectedSinceMs: null, mqttVersion: '5', errorsLastHour: 0 });
  session.emit('failure', 'connection refused');
  now += 1000;
  session.emit('failure', 'connection refused');
  session.connected = true;
  session.emit('connect');
  assert.equal(watch.view(), { broker: 'mqtts://broker.example:8883', connected: true, connectedSinceMs: now, mqttVersion: '5', errorsLastHour: 2 });
  now += 3_600_000;
  assert.is(watch.view().errorsLastHour, 1, 'the first failure is more than an hour old');
  session.connected = false;
  session.emit('disconnect');
  assert.is(watch.view().connectedSinceMs, null);
  assert.is(changes, 4);
  watch.close();
  assert.is(session.listenerCount('connect') + session.listenerCount('disconnect') + session.listenerCount('failure'), 0);
});

test('no uplink: no broker, no version', () => {
  assert.equal(new UplinkWatch(undefined, null, () => {}).view(), { broker: null, connected: false, connectedSinceMs: null, mqttVersion: null, errorsLastHour: 0 });
});

test('credentials never reach the page, whatever the URL looks like', () => {
  assert.is(publicUrl('mqtt://alice:secret@10.0.0.1:1883'), 'mqtt://10.0.0.1:1883');
  assert.is(publicUrl('wss://alice@host/mqtt'), 'wss://host/mqtt');
  assert.not.match(publicUrl('mqtt://a:b@[bad'), /a:b/);
});

test.run();
