// One MQTT connection that stays up: the agent owns reconnecting (capped exponential
// backoff with jitter, not mqtt.js's fixed interval), speaks MQTT 5 and falls back to
// 3.1.1 for a broker that does not, and turns connection failures into messages that
// say what to fix, rate-limited so a refusing broker does not flood the log.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import { IopError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { Backoff } from './backoff.ts';
import { RateLimitedLog } from './rate-limited-log.ts';
import { openMqttClient } from './transport.ts';
import { coalesceWrites } from './write-coalescer.ts';

export interface SessionOptions {
  url: string;
  clientId: string;
  username?: string | undefined;
  passwordFile?: string | undefined;
  tls?: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined; servername?: string | undefined };
  keepaliveS: number;
  will?: { topic: string; payload: Uint8Array; retain: boolean; qos: 0 | 1 };
  subscriptions: string[];
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Keep the session (subscriptions, queued QoS 1 messages) this long while disconnected; 0: clean session. */
  sessionExpiryS?: number;
  log: Logger;
  /**
   * Called after each received message; the client takes its next packet (and acknowledges
   * this one) when `callback` is called: a receiver that falls behind holds the broker.
   */
  handleMessage?: ((callback: () => void) => void) | undefined;
  /** What the client writes in one event-loop turn leaves in one write (write-coalescer.ts): for a client sending thousands of packets a second. */
  coalesceWrites?: boolean | undefined;
}

export interface SessionEvents {
  connect: [client: MqttClient];
  disconnect: [];
  /** the packet too: its properties say which subscription brought it (MQTT 5) */
  message: [topic: string, payload: Buffer, packet: IPublishPacket];
  /** A connection attempt or a connected session failed (the status page counts them). */
  failure: [message: string];
}

const UNSUPPORTED_PROTOCOL = new Set([1, 132]);
const STOP_WAIT_MS = 2000;
const REFUSED_CREDENTIALS = new Set([4, 5, 134, 135, 138, 140]);

export class MqttSession extends EventEmitter<SessionEvents> {
  private readonly options: SessionOptions;
  private readonly backoff: Backoff;
  private readonly errors: RateLimitedLog;
  private readonly fileOptions: Partial<IClientOptions>;
  private client: MqttClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private protocolVersion: 4 | 5 = 5;
  private up = false;
  private retryAtOnce = false;
  /** Connections made (the first one and every reconnection), for status and metrics. */
  readonly counters = { connects: 0 };

  constructor(options: SessionOptions) {
    super();
    this.options = options;
    this.backoff = new Backoff(options.reconnectMinMs, options.reconnectMaxMs);
    this.errors = new RateLimitedLog(options.log);
    this.fileOptions = readSecrets(options);
  }

  get connected(): boolean {
    return this.up;
  }

  /** The MQTT version in use (or about to be tried). */
  get mqttVersion(): '5' | '3.1.1' {
    return this.protocolVersion === 5 ? '5' : '3.1.1';
  }

  get current(): MqttClient | undefined {
    return this.up ? this.client : undefined;
  }

  /**
   * The client from the broker's CONNACK on, before `current`: a persistent session's
   * queued messages arrive before the subscriptions are confirmed (all of them first, on a
   * broker without an in-flight limit), and what answers them may go out meanwhile.
   */
  get connectedClient(): MqttClient | undefined {
    return this.client?.connected ? this.client : undefined;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Ends the connection; `goodbye` is published first when connected (a clean offline status). */
  async stop(goodbye?: { topic: string; payload: Uint8Array; retain: boolean }): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const client = this.client;
    if (!client) return;
    // A broker that stopped answering must not hold up the agent's shutdown.
    const limit = <T>(promise: Promise<T>) => Promise.race([promise.catch(() => undefined), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), STOP_WAIT_MS).unref())]);
    if (goodbye && this.up) {
      await limit(client.publishAsync(goodbye.topic, Buffer.from(goodbye.payload), { qos: 1, retain: goodbye.retain }));
    }
    if ((await limit(client.endAsync(false).then(() => true))) !== true) await client.endAsync(true).catch(() => {});
    this.markDown();
  }

  private connect(): void {
    const { options } = this;
    const client = openMqttClient(options.url, {
      ...this.fileOptions,
      clientId: options.clientId,
      protocolVersion: this.protocolVersion,
      clean: !options.sessionExpiryS,
      ...(options.sessionExpiryS && this.protocolVersion === 5 ? { properties: { sessionExpiryInterval: options.sessionExpiryS } } : {}),
      keepalive: options.keepaliveS,
      reconnectPeriod: 0, // reconnecting is ours
      connectTimeout: 15_000,
      resubscribe: false,
      // mqtt-packet would otherwise pre-build a Buffer for each of the 65,536 packet ids:
      // 6.6 MB of heap on a box, for a saving per packet too small to measure.
      writeCache: false,
      // mqtt.js logs each packet's steps through `debug`; off, those calls still cost several
      // per packet (a gateway receives thousands a second). DEBUG=… keeps them.
      ...(process.env.DEBUG ? {} : { log: () => undefined }),
      ...(options.will ? { will: { ...options.will, payload: Buffer.from(options.will.payload) } } : {}),
    });
    this.client = client;
    if (options.coalesceWrites) coalesceWrites(client.stream);
    const { handleMessage } = options;
    if (handleMessage) client.handleMessage = (_packet, callback) => handleMessage(() => callback());
    client.on('connect', () => {
      void this.onConnect(client);
    });
    client.on('message', (topic, payload, packet) => this.emit('message', topic, payload, packet));
    client.on('error', (err) => this.onError(client, err));
    client.on('close', () => this.onClose(client));
  }

  private async onConnect(client: MqttClient): Promise<void> {
    // Publishes go out in bursts and wait for PUBACKs: Nagle's algorithm would hold a
    // burst's tail until the broker's delayed ACK, stalling the window.
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    try {
      if (this.options.subscriptions.length) await client.subscribeAsync(this.options.subscriptions, { qos: 1 });
    } catch (err) {
      this.errors.error(`subscribing at ${this.options.url} failed: ${errorMessage(err)}`);
      client.end(true);
      return;
    }
    if (client !== this.client) return;
    this.backoff.reset();
    this.errors.clear();
    this.up = true;
    this.counters.connects++;
    this.options.log.info(`connected to ${this.options.url} (MQTT ${this.protocolVersion === 5 ? '5' : '3.1.1'})`);
    this.emit('connect', client);
  }

  private onError(client: MqttClient, err: Error & { code?: unknown }): void {
    // While stopping, a broker that goes away first (the demo's, or at shutdown) is expected.
    if (client !== this.client || this.stopped) return;
    const code = typeof err.code === 'number' ? err.code : undefined;
    if (code !== undefined && UNSUPPORTED_PROTOCOL.has(code) && this.protocolVersion === 5) {
      this.options.log.info(`${this.options.url} does not speak MQTT 5; using MQTT 3.1.1`);
      this.protocolVersion = 4;
      this.retryAtOnce = true;
      return; // close follows and reconnects with 3.1.1
    }
    const message = describeConnectionError(this.options.url, err, this.options);
    this.errors.error(message);
    this.emit('failure', message);
  }

  private onClose(client: MqttClient): void {
    if (client !== this.client) return;
    client.removeAllListeners();
    client.on('error', () => {}); // a late socket error must not become an uncaught exception
    this.markDown();
    this.client = undefined;
    if (this.stopped) return;
    const delay = this.retryAtOnce ? 0 : this.backoff.next();
    this.retryAtOnce = false;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  private markDown(): void {
    if (!this.up) return;
    this.up = false;
    if (this.stopped) this.options.log.info(`disconnected from ${this.options.url}`);
    else this.options.log.warn(`disconnected from ${this.options.url}`);
    this.emit('disconnect');
  }
}

function readSecrets(options: SessionOptions): Partial<IClientOptions> {
  const read = (what: string, path: string | undefined) => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new IopError('CONFIG', `uplink ${what} file ${path}: ${errorMessage(err)}`, { path });
    }
  };
  const tls = options.tls ?? {};
  const out: Partial<IClientOptions> = { rejectUnauthorized: true };
  const ca = read('tls.ca', tls.ca);
  const cert = read('tls.cert', tls.cert);
  const key = read('tls.key', tls.key);
  if (ca) out.ca = ca;
  if (cert) out.cert = cert;
  if (key) out.key = key;
  if (tls.servername) out.servername = tls.servername;
  if (options.username !== undefined) out.username = options.username;
  const password = read('passwordFile', options.passwordFile);
  if (password) out.password = password.toString('utf8').replace(/\r?\n$/, '');
  return out;
}

/** Words for what went wrong, and what to check. */
export function describeConnectionError(url: string, err: Error & { code?: unknown }, options: Pick<SessionOptions, 'tls'>): string {
  const code = err.code;
  if (typeof code === 'number' && REFUSED_CREDENTIALS.has(code)) {
    return `broker ${url} refused the connection: ${err.message} (check uplink.username and uplink.passwordFile, and the broker's ACL)`;
  }
  switch (code) {
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `TLS: the certificate of ${url} is not for that host name (${err.message}); set uplink.tls.servername if the broker is reached by another name`;
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return `TLS: the certificate of ${url} is not signed by a trusted CA (${String(code)}); check uplink.tls.ca${options.tls?.ca ? ` (${options.tls.ca})` : ''}`;
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
      return `TLS: the certificate of ${url} is outside its validity period (${String(code)}); check the broker certificate and this box's clock`;
    case 'ECONNREFUSED':
      return `cannot reach broker ${url}: connection refused (is the broker running on that port?)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot reach broker ${url}: host name does not resolve`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot reach broker ${url}: ${String(code)}`;
  }
  return `broker ${url}: ${err.message}`;
}
