// `iop-agent proof`: the inclusion proof of one stored reading, from the gateway's state
// dir or the PostgreSQL database its gateways share.
import type { Command } from '../command.ts';
import { CONFIG_OPTIONS, stringOption } from '../command.ts';
import { IopError } from '../errors.ts';
import { configFromFlags, integerOption, requireOption } from './options.ts';

export const proofCommand: Command = {
  name: 'proof',
  summary: 'print the Merkle inclusion proof of a reading the gateway anchored',
  usage: 'iop-agent proof (--state-dir DIR | --db postgres://...) --device ID --seq N [--json]',
  help: `      --state-dir DIR   the gateway's state dir (its SQLite store)
      --db URL          the PostgreSQL database of gateways run with 'gateway --db URL'
      --device ID       the device id
      --seq N           the reading's sequence number
      --json            one JSON line {epoch, root, leaf {hash, device, seq}, proof, anchored
                        {chainId, contract, transaction, block, state} or null}: what
                        'iop-agent verify --anchored --proof FILE' takes`,
  options: { ...CONFIG_OPTIONS, db: { type: 'string' }, device: { type: 'string' }, seq: { type: 'string' }, json: { type: 'boolean' } },
  async run(context) {
    // Loaded only here: the Merkle tree library and pg stay out of a box's memory.
    const { dbOption, openLedgerReader } = await import('../gateway/ledger-reader.ts');
    const db = dbOption(stringOption(context, 'db'));
    if (db === undefined && !stringOption(context, 'state-dir') && !stringOption(context, 'config')) throw new IopError('USAGE', '--state-dir or --db is required');
    const device = requireOption(context, 'device');
    const seq = integerOption(context, 'seq', { min: 0, max: Number.MAX_SAFE_INTEGER });
    if (seq === undefined) throw new IopError('USAGE', '--seq is required');
    const { proofFromLedger } = await import('../chain/proofs.ts');
    const ledger = await openLedgerReader(db !== undefined ? { stateDir: '', db } : { stateDir: configFromFlags(context).config.stateDir });
    try {
      const proof = await proofFromLedger(ledger, device, seq);
      if (context.values.json === true) {
        context.stdout.write(JSON.stringify(proof) + '\n');
      } else {
        const where = proof.anchored ? `chain ${proof.anchored.chainId}, contract ${proof.anchored.contract}, transaction ${proof.anchored.transaction} (block ${proof.anchored.block}, ${proof.anchored.state})` : 'not yet in a block';
        context.stdout.write([
          `epoch     ${proof.epoch}`, `root      ${proof.root}`, `leaf      ${proof.leaf.hash} ${proof.leaf.device} ${proof.leaf.seq}`,
          `proof     ${proof.proof.length ? proof.proof.join('\n          ') : '(empty: the only reading of its epoch)'}`, `anchored  ${where}`,
        ].join('\n') + '\n');
      }
    } finally {
      await ledger.close();
    }
    return 0;
  },
};
