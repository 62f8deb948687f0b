// `iop-agent chain deploy|authorize|key`: the registry contract's life (docs/chain.md).
import type { Command } from '../command.ts';

export const chainCommand: Command = {
  name: 'chain',
  summary: 'deploy the registry, staking or rewards contract, authorise gateways, make a chain key',
  usage: 'iop-agent chain deploy [registry|staking|rewards] --rpc URL --key FILE [--json] | chain authorize --rpc URL --key FILE --contract ADDR --gateway 0x… | chain key --key FILE',
  help: `      deploy [KIND]     deploy a contract: registry (default), staking (the stake registry) or
                        rewards (the claim contract); the deploying address is the registry's
                        and the claim contract's first authorised gateway.
                        Prints {"contract", "chainId", "transaction"} with --json
      authorize         let another gateway address anchor and relay pairings (signed by an
                        authorised gateway's key)
      key               make a new chain key file (0600) and print its address
      --rpc URL         the chain's JSON-RPC endpoint (http or https)
      --key FILE        chain key: 0x and 64 hex digits, mode 0600 (never printed)
      --contract ADDR   the registry contract
      --gateway ADDR    the address to authorise
      --json            one JSON line`,
  options: { rpc: { type: 'string' }, key: { type: 'string' }, contract: { type: 'string' }, gateway: { type: 'string' }, json: { type: 'boolean' } },
  positionals: { min: 1, max: 2 },
  async run(context) {
    return (await import('../chain/cli.ts')).runChain(context);
  },
};
