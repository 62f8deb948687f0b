import { readFileSync } from 'node:fs';
import { cborItemLength } from '../codec/cbor.ts';
import { fromHex } from '../codec/hex.ts';
import { ReadingVerifier, VerifyError, readingToJson } from '../codec/verify.ts';
import type { Command } from '../command.ts';
import { IopError, errorMessage } from '../errors.ts';
import { stringOption } from '../command.ts';
import type { AnchoredResult } from '../chain/anchored-check.ts';

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'verify signed readings (one COSE_Sign1 or a CBOR sequence) and their chain',
  usage: 'iop-agent verify [FILE|-] [--pubkey HEX] [--allow-gaps] [--anchored --rpc URL --contract ADDR (--proof FILE | --gateway-state DIR | --gateway-db URL)]',
  help: `      FILE              input; '-' or nothing reads standard input
      --pubkey HEX      accept only messages signed by this raw Ed25519 public key (64 hex digits);
                        without it each message is checked against the key its device id names
      --allow-gaps      a gap in sequence numbers is reported but does not fail the run
      --anchored        also check each message's inclusion under the Merkle root its epoch has
                        on chain (read from --contract through --rpc), with the proofs of
                        --proof FILE ('iop-agent proof --json' lines), --gateway-state DIR
                        or --gateway-db URL (the PostgreSQL database of 'gateway --db URL')
Prints one JSON line per message (with --anchored: and its "anchored" {epoch, root}); exits 1 with a one-line reason on the first bad,
tampered, broken-chain (or, without --allow-gaps, gapped) message.`,
  options: {
    pubkey: { type: 'string' }, 'allow-gaps': { type: 'boolean' },
    anchored: { type: 'boolean' }, rpc: { type: 'string' }, contract: { type: 'string' }, proof: { type: 'string' }, 'gateway-state': { type: 'string' }, 'gateway-db': { type: 'string' },
  },
  positionals: { min: 0, max: 1 },
  async run(context) {
    const pubkeyText = stringOption(context, 'pubkey');
    let publicKey: Uint8Array | undefined;
    if (pubkeyText !== undefined) {
      try {
        publicKey = fromHex(pubkeyText);
      } catch (err) {
        throw new IopError('USAGE', `--pubkey: ${errorMessage(err)}`);
      }
      if (publicKey.length !== 32) throw new IopError('USAGE', `--pubkey expects 32 bytes (64 hex digits), got ${publicKey.length} bytes`);
    }
    const source = context.positionals[0] ?? '-';
    let input: Uint8Array;
    try {
      input = readFileSync(source === '-' ? 0 : source);
    } catch (err) {
      throw new IopError('INPUT', `cannot read ${source === '-' ? 'standard input' : source}: ${errorMessage(err)}`);
    }
    if (input.length === 0) throw new IopError('INPUT', `${source === '-' ? 'standard input' : source} is empty: no message to verify`);

    // Loaded only here: viem stays out of plain verification.
    const chain = context.values.anchored === true ? await import('../chain/cli.ts') : undefined;
    const anchored = chain ? await chain.anchoredCheck(context) : undefined;
    const verifier = new ReadingVerifier(publicKey ? { publicKey } : {});
    const allowGaps = context.values['allow-gaps'] === true;
    let failure: string | undefined;
    let offset = 0;
    try {
      for (let index = 0; offset < input.length; index++) {
        const where = `message ${index} (byte ${offset})`;
        let length: number;
        try {
          length = cborItemLength(input, offset);
        } catch (err) {
          failure ??= `${where}: not CBOR: ${errorMessage(err)}`;
          break; // without a sound item boundary nothing after it can be found
        }
        const bytes = input.subarray(offset, offset + length);
        offset += length;
        try {
          const reading = verifier.verify(bytes);
          let inclusion: AnchoredResult | undefined;
          if (anchored && reading.valid) {
            try {
              inclusion = await anchored.check(reading.device, reading.seq, reading.hash);
            } catch (err) {
              if (!(err instanceof IopError)) throw chain!.chainFailure(err);
              failure ??= `${where}, seq ${reading.seq}: ${err.message}`;
            }
          }
          context.stdout.write(JSON.stringify({ ...readingToJson(reading), ...(inclusion ? { anchored: inclusion } : {}) }) + '\n');
          if (!reading.valid) failure ??= `${where}, seq ${reading.seq}: signature does not verify`;
          else if (reading.chain === 'broken') failure ??= `${where}, seq ${reading.seq}: chain broken (prev does not match the previous message, or the sequence went back)`;
          else if (reading.chain === 'gap' && !allowGaps) failure ??= `${where}, seq ${reading.seq}: gap in the chain (messages before it are missing)`;
        } catch (err) {
          if (!(err instanceof VerifyError)) throw err;
          failure ??= `${where}: ${err.message}`;
        }
      }
    } finally {
      // A PostgreSQL ledger's connections would hold the process open.
      await anchored?.close();
    }
    if (failure) throw new IopError('VERIFY', failure);
    return 0;
  },
};
