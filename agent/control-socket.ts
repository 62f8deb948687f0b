// A local control socket in the state dir (mode 0600) through which `iop-agent mesh`
// asks the running agent for its state: one request line in, one JSON line out.
import { chmodSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { IopError } from './errors.ts';

export const CONTROL_SOCKET = 'control.sock';

export type ControlHandlers = Record<string, () => unknown>;

export async function startControlSocket(stateDir: string, handlers: ControlHandlers): Promise<Server> {
  const path = join(stateDir, CONTROL_SOCKET);
  rmSync(path, { force: true }); // left by an agent that was killed
  const server = createServer((socket) => {
    let line = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      line += chunk;
      if (line.length > 256) return socket.destroy();
      const end = line.indexOf('\n');
      if (end < 0) return;
      const command = line.slice(0, end).trim();
      const handler = handlers[command];
      const reply = handler ? { ok: true, result: handler() } : { ok: false, error: `unknown request '${command.slice(0, 40)}' (known: ${Object.keys(handlers).join(', ')})` };
      socket.end(`${JSON.stringify(reply)}\n`);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  server.unref();
  return server;
}

export function askAgent(stateDir: string, command: string, timeoutMs = 5000): Promise<unknown> {
  const path = join(stateDir, CONTROL_SOCKET);
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let data = '';
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('data', (c) => (data += c));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? `no agent is running with state dir ${stateDir} (no ${path})` : err.message;
      reject(new IopError('AGENT', why));
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        const reply = JSON.parse(data) as { ok: boolean; result?: unknown; error?: string };
        if (!reply.ok) reject(new IopError('AGENT', reply.error ?? 'the agent refused the request'));
        else resolve(reply.result);
      } catch {
        reject(new IopError('AGENT', `the agent's answer is not JSON: ${data.slice(0, 80)}`));
      }
    });
  });
}
