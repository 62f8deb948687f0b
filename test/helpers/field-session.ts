// The scripted field session of issue 12: a tech who has never seen the box types
// `iop-agent console <path>`, `pair start --owner …` and `pair finish 0x…` (the owner
// signs in between with their wallet, here ethers). Returns what was typed and printed.
import type { Wallet } from 'ethers';
import { startCli } from './cli.ts';
import { within } from './pty.ts';

export async function fieldPairing(tech: string, owner: Pick<Wallet, 'address' | 'signTypedData'>): Promise<{ typed: string[]; output: string; code: number | null; stderr: string; nonce: string }> {
  const typed = [`iop-agent console ${tech}`];
  const session = startCli(['console', tech]);
  let out = '';
  let err = '';
  session.stdout!.on('data', (c) => (out += c));
  session.stderr!.on('data', (c) => (err += c));
  const waitFor = (pattern: RegExp) => within(20_000, `output ${pattern}`, (async () => {
    while (!pattern.test(out)) await new Promise((r) => setTimeout(r, 20));
    return out.match(pattern)!;
  })());
  await waitFor(/type help/);
  typed.push(`pair start --owner ${owner.address}`);
  session.stdin!.write(typed[1] + '\n');
  const [line] = await waitFor(/\{"types".*\}\n/);
  const data = JSON.parse(line) as { domain: { name: string; version: string }; types: Record<string, { name: string; type: string }[]>; message: Record<string, unknown> };
  const { EIP712Domain: _, ...types } = data.types;
  typed.push(`pair finish ${await owner.signTypedData(data.domain, types, data.message)}`);
  session.stdin!.write(typed[2] + '\n');
  await waitFor(/Paired: owner 0x|error: /);
  session.stdin!.end();
  const code = await new Promise<number | null>((r) => session.on('close', r));
  return { typed, output: out, code, stderr: err, nonce: String(data.message.nonce) };
}
