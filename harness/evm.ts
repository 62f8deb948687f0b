// A local EVM chain for tests and benches: Hardhat 3's embedded EDR node, started from
// code on 127.0.0.1 (no config file, so Hardhat never fetches a compiler: contracts are
// compiled with solc-js, contracts/compile.ts), behind a small JSON-RPC relay that a
// test can take down and bring back on the same port to play "RPC down".
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from './mosquitto.ts';

/** Private keys of the dev node's first funded accounts (the well-known Hardhat test mnemonic). */
export const DEV_KEYS = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
] as const;

export interface Evm {
  /** the relay's URL: what the code under test talks to */
  url: string;
  /** the node itself, never taken down */
  directUrl: string;
  chainId: number;
  /** one JSON-RPC call straight to the node (evm_mine, evm_snapshot, ...) */
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  /** the relay stops answering: connections are refused */
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

/** Why the local chain cannot run here, or undefined when it can. */
export async function evmMissing(): Promise<string | undefined> {
  try {
    const evm = await startEvm();
    await evm.stop();
    return undefined;
  } catch (err) {
    return `needs Hardhat's EDR node (its native package @nomicfoundation/edr-linux-x64-gnu: run npm install under the pinned node, PATH=node_modules/.bin:$PATH npm install, as .ci/run does): ${(err as Error).message.split('\n')[0]}`;
  }
}

export async function startEvm(): Promise<Evm> {
  const { createHardhatRuntimeEnvironment } = await import('hardhat/hre');
  const hre = await createHardhatRuntimeEnvironment({});
  const node = await hre.network.createServer('default', '127.0.0.1', 0);
  const { port: nodePort } = await node.listen();
  const directUrl = `http://127.0.0.1:${nodePort}`;
  const rpc = async <T>(method: string, params: unknown[] = []): Promise<T> => {
    const response = await fetch(directUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    const body = await response.json() as { result?: T; error?: { message: string } };
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result as T;
  };
  const relayPort = await freePort();
  let relay: Server | undefined;
  const up = async () => {
    if (relay) return;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        fetch(directUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) })
          .then(async (r) => { res.writeHead(r.status, { 'content-type': 'application/json' }); res.end(Buffer.from(await r.arrayBuffer())); })
          .catch(() => { res.writeHead(502); res.end(); });
      });
    });
    // Longer than the clients' idle sockets live: a socket the relay closed while a client
    // reuses it would read as a reset, which is not the fault a test means to play.
    server.keepAliveTimeout = 120_000;
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(relayPort, '127.0.0.1', () => resolve()); });
    relay = server;
  };
  const down = async () => {
    const server = relay;
    relay = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  await up();
  const chainId = Number(await rpc<string>('eth_chainId'));
  return {
    url: `http://127.0.0.1:${(relay!.address() as AddressInfo).port}`,
    directUrl,
    chainId,
    rpc,
    up,
    down,
    async stop() {
      await down();
      await node.close();
    },
  };
}
