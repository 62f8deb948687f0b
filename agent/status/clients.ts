// The page's WebSocket clients. Each gets a `sync` message when it connects (the number
// of the last change sent: a whole state, which travels compressed over HTTP, must be at
// least that recent, and the changes numbered after it apply), then every change. A client that reads slowly is never queued more than
// about `highWaterBytes`: while its socket's buffer is above that, changes for it are
// dropped and it is marked stale, and once the buffer has drained it gets a `sync`
// again, so a paused client costs one flag, not a growing queue. Clients send nothing: any message
// closes that client (the page is read-only), and a broken frame closes only its socket.
import type { WebSocket } from 'ws';

export interface ClientsOptions {
  /** The message that has a client fetch the whole state (on connecting, after drops). */
  sync(): string;
  highWaterBytes?: number;
  /** Ping this often; a client that did not answer the last ping is cut off. */
  pingEveryMs?: number;
}

interface Client { ws: WebSocket; stale: boolean; alive: boolean }

const DEFAULT_HIGH_WATER = 64 * 1024;
const CATCH_UP_EVERY_MS = 500;

export class Clients {
  private readonly options: ClientsOptions;
  private readonly clients = new Set<Client>();
  private readonly highWater: number;
  private catchUp: NodeJS.Timeout | undefined;
  private readonly pinger: NodeJS.Timeout;
  /** messages not sent to a stale client (for tests and the bench) */
  dropped = 0;

  constructor(options: ClientsOptions) {
    this.options = options;
    this.highWater = options.highWaterBytes ?? DEFAULT_HIGH_WATER;
    this.pinger = setInterval(() => this.ping(), options.pingEveryMs ?? 30_000).unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** The most bytes any client's socket has queued in this process. */
  backlog(): number {
    let most = 0;
    for (const { ws } of this.clients) most = Math.max(most, ws.bufferedAmount);
    return most;
  }

  add(ws: WebSocket): void {
    const client: Client = { ws, stale: false, alive: true };
    this.clients.add(client);
    ws.on('message', () => ws.close(1008, 'the status page takes no messages'));
    // A malformed frame: ws closes the socket with 1002; the other clients go on.
    ws.on('error', () => ws.terminate());
    ws.on('pong', () => { client.alive = true; });
    ws.on('close', () => this.clients.delete(client));
    ws.send(this.options.sync());
  }

  /**
   * One change for every client (stale ones get a sync once they have drained): encoded
   * once, the same bytes written to every socket.
   */
  send(message: string): void {
    if (this.clients.size === 0) return;
    const bytes = Buffer.from(message, 'utf8');
    for (const client of this.clients) this.deliver(client, bytes);
  }

  private deliver(client: Client, message: Buffer | undefined): void {
    const { ws } = client;
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > this.highWater) {
      client.stale = true;
      this.dropped++;
      this.catchUp ??= setInterval(() => this.catchUpStale(), CATCH_UP_EVERY_MS).unref();
      return;
    }
    if (client.stale || message === undefined) {
      client.stale = false;
      ws.send(this.options.sync());
      return;
    }
    ws.send(message, { binary: false });
  }

  private catchUpStale(): void {
    let stale = 0;
    for (const client of this.clients) {
      if (!client.stale) continue;
      if (client.ws.bufferedAmount > this.highWater) stale++;
      else this.deliver(client, undefined);
    }
    if (stale === 0) {
      clearInterval(this.catchUp);
      this.catchUp = undefined;
    }
  }

  private ping(): void {
    for (const client of this.clients) {
      if (!client.alive) {
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      client.ws.ping();
    }
  }

  close(): void {
    clearInterval(this.pinger);
    clearInterval(this.catchUp);
    for (const client of this.clients) client.ws.terminate();
    this.clients.clear();
  }
}
