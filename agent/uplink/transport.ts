// Makes the MQTT client for a broker URL. mqtt.connect() loads every transport mqtt.js
// has (WebSocket with http, https and zlib, SOCKS) on its first call: about 6 MB
// resident on a box that speaks plain MQTT or MQTT over TLS. For mqtt:// and mqtts://
// the agent opens the socket itself and hands it to mqtt.js's client; ws:// and wss://
// go through mqtt.connect() and pay for what they use.
import { createConnection, isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import mqtt, { MqttClient, type IClientOptions } from 'mqtt';
import { IopError } from '../errors.ts';

const DEFAULT_PORTS: Record<string, number> = { mqtt: 1883, tcp: 1883, mqtts: 8883, ssl: 8883, tls: 8883 };
const SECURE = new Set(['mqtts', 'ssl', 'tls']);

export function openMqttClient(url: string, options: IClientOptions): MqttClient {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new IopError('CONFIG', `broker URL '${url}' is not a URL (expected e.g. mqtt://host:1883)`);
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  if (scheme === 'ws' || scheme === 'wss') return mqtt.connect(url, options);
  if (!(scheme in DEFAULT_PORTS)) {
    throw new IopError('CONFIG', `broker URL '${url}': unknown scheme '${scheme}' (expected mqtt, mqtts, ws or wss)`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const port = parsed.port ? Number(parsed.port) : DEFAULT_PORTS[scheme]!;
  const credentials = parsed.username && options.username === undefined
    ? { username: decodeURIComponent(parsed.username), ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}) }
    : {};
  const secure = SECURE.has(scheme);
  const clientOptions: IClientOptions = { ...options, ...credentials, protocol: secure ? 'mqtts' : 'mqtt', host, hostname: host, port };
  return new MqttClient((client) => secure ? tlsSocket(client, host, port, options) : createConnection({ host, port }), clientOptions);
}

function tlsSocket(client: MqttClient, host: string, port: number, options: IClientOptions) {
  const rejectUnauthorized = options.rejectUnauthorized !== false;
  const tlsOptions: ConnectionOptions = {
    host,
    port,
    // The server name is checked against the certificate unless told otherwise; SNI is not sent for bare IPs.
    ...(options.servername ? { servername: options.servername } : isIP(host) === 0 ? { servername: host } : {}),
    rejectUnauthorized,
    ...(options.ca ? { ca: options.ca as ConnectionOptions['ca'] } : {}),
    ...(options.cert ? { cert: options.cert as ConnectionOptions['cert'] } : {}),
    ...(options.key ? { key: options.key as ConnectionOptions['key'] } : {}),
  };
  // node:tls is loaded only by a box that uses it: a few MB resident otherwise.
  const socket = process.getBuiltinModule('node:tls').connect(tlsOptions);
  // A handshake failure is the client's error (it names the cause); the socket just ends.
  const onHandshakeError = (err: Error) => {
    client.emit('error', err);
    socket.end();
  };
  socket.on('error', onHandshakeError);
  socket.on('secureConnect', () => socket.removeListener('error', onHandshakeError));
  return socket;
}
