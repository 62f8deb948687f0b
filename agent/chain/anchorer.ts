// Anchors each epoch's Merkle root on the registry contract, one transaction per epoch,
// in epoch order. Every step is recorded in the ledger before the next one, so a restart
// (or a kill -9) anywhere resumes without skipping an epoch or anchoring one twice:
//   built -> sending (nonce chosen) -> sent (hash known) -> mined -> final.
// A transaction that vanishes (dropped from the pool, or its block reorganised away so the
// root reads zero again) sends the epoch again. RPC failures wait with backoff.
import { randomBytes } from 'node:crypto';
import type { Hex } from 'viem';
import type { Logger } from '../log.ts';
import type { AnchorLedger, EpochRecord, PairingRelay } from '../gateway/anchor-ledger.ts';
import { REGISTRY_ABI } from './artifact.ts';
import { ChainClient, ChainError, classifyChainError, type Address, type ChainFailure } from './client.ts';
import type { PrivateKeyAccount } from 'viem/accounts';

const ZERO_ROOT = '0x' + '0'.repeat(64);
/** rounds a transaction may wait in the pool before it is replaced with higher fees */
const STUCK_ROUNDS = 120;
/** gas limit of a replacement that cannot be estimated (anchor() uses about 48,000) */
const ANCHOR_GAS = 120_000n;

export interface AnchorerOptions {
  ledger: AnchorLedger;
  rpc: string;
  account: PrivateKeyAccount;
  contract: Address;
  /** blocks on top of an anchoring before it is no longer watched for reorgs */
  confirmations: number;
  /** wait after an epoch's end before building it (batches still committing) */
  graceMs?: number;
  log: Logger;
  now?: () => number;
  /** what the leaves are, for the log (default readings) */
  leaves?: string;
}

export class Anchorer {
  readonly counters = { built: 0, sent: 0, mined: 0, resent: 0, chainErrors: 0, pairingsRelayed: 0 };
  private readonly options: AnchorerOptions;
  private readonly log: Logger;
  private readonly owner = randomBytes(6).toString('hex');
  private client: ChainClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private failures = 0;
  private readonly tickMs: number;
  private readonly maxBackoffMs: number;
  /** ticks a sent transaction stayed pending, by epoch: long enough, it is replaced with higher fees */
  private readonly pendingTicks = new Map<number, number>();
  /** gas limit over the estimate, by epoch: doubled after the epoch's transaction ran out of gas */
  private readonly gasFactors = new Map<number, number>();

  constructor(options: AnchorerOptions) {
    this.options = options;
    this.log = options.log;
    const epochMs = options.ledger.epochS * 1000;
    this.tickMs = Math.min(1000, Math.max(100, epochMs / 5));
    this.maxBackoffMs = Math.min(60_000, Math.max(2000, epochMs));
  }

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.options.ledger.close();
  }

  /** Queues a pairing the gateway verified (the box's signature included) for the contract. */
  relayPairing(relay: Omit<PairingRelay, 'state' | 'tx'>): void {
    // A PostgreSQL ledger answers later: a failure is logged (the pairing itself is stored;
    // the owner can pair again to relay it), never thrown into the pairing session.
    Promise.resolve().then(() => this.options.ledger.queuePairing(relay))
      .catch((err: unknown) => this.log.warn(`pairing of ${relay.device} not queued for the chain: ${(err as Error).message}`));
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().then((delay) => this.schedule(delay));
    }, delayMs);
  }

  /** One round; returns the delay before the next. Never throws. */
  private async tick(): Promise<number> {
    const now = this.now();
    try {
      if (!await this.options.ledger.claimLease(this.owner, now, this.tickMs * 5 + 2000)) return this.tickMs;
      for (const record of await this.options.ledger.buildDue(now, this.options.graceMs ?? 1000)) {
        this.counters.built++;
        this.log.info(`epoch ${record.epoch}: root ${record.root} over ${record.leaves} ${this.options.leaves ?? 'readings'}`);
      }
      const client = await this.connect();
      await this.advanceEpochs(client);
      await this.relayPairings(client);
      this.failures = 0;
      return this.tickMs;
    } catch (err) {
      const failure = classifyChainError(err);
      this.counters.chainErrors++;
      this.failures++;
      const delay = Math.min(this.maxBackoffMs, this.tickMs * 2 ** Math.min(this.failures, 10));
      const what = failure.kind === 'down' ? 'chain RPC unreachable'
        : failure.kind === 'revert' ? `the contract refuses with ${failure.error}(${failure.args.map(String).join(', ')})${failure.error === 'NotAuthorized' ? ' (authorise this gateway: iop-agent chain authorize)' : ''}`
          : `chain error (${failure.kind})`;
      // The key never appears in these messages: viem's errors name the address, not the key.
      this.log.warn(`${what}: ${failure.message.split('\n')[0]}; retrying in ${Math.round(delay / 1000)} s`);
      if (failure.kind === 'down') this.client = undefined;
      return delay;
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private async connect(): Promise<ChainClient> {
    if (this.client) return this.client;
    const client = await ChainClient.connect(this.options.rpc, this.options.account);
    await this.options.ledger.bindChain(client.chainId, this.options.contract, client.address);
    this.client = client;
    this.log.info(`anchoring on chain ${client.chainId}, contract ${this.options.contract}, as ${client.address}`);
    return client;
  }

  private async advanceEpochs(client: ChainClient): Promise<void> {
    const head = await client.blockNumber();
    for (const record of await this.options.ledger.unfinished()) {
      const state = await this.advance(client, record, head);
      // In order: a newer epoch waits until the older one is in a block.
      if (state !== 'mined' && state !== 'final') return;
    }
  }

  private async advance(client: ChainClient, record: EpochRecord, head: bigint): Promise<EpochRecord['state']> {
    const { ledger, contract } = this.options;
    const { epoch } = record;
    switch (record.state) {
      case 'built':
        return this.send(client, record);
      case 'sending': {
        // We may have died after the node took the transaction and before its hash was
        // recorded: it is mined if the nonce is used and the root is ours; if the nonce is
        // free, a replacement with the same nonce can only ever leave one of the two.
        const root = await client.rootOf(contract, epoch);
        if (root === record.root) return this.adoptAnchoring(client, record);
        const used = await client.nonce('latest');
        if (record.nonce !== null && used <= record.nonce) {
          // A transaction with that nonce in the pool is only replaced by one paying more.
          const inPool = (await client.nonce('pending')) > record.nonce;
          return this.send(client, record, { nonce: record.nonce, replace: inPool });
        }
        return this.send(client, record);
      }
      case 'sent': {
        const receipt = await client.receipt(record.tx as Hex);
        if (receipt) {
          this.pendingTicks.delete(epoch);
          if (receipt.status === 'success') {
            await ledger.update(epoch, { state: 'mined', block: Number(receipt.blockNumber) });
            this.counters.mined++;
            this.log.info(`epoch ${epoch}: anchored in block ${receipt.blockNumber}, transaction ${record.tx}`);
            return 'mined';
          }
          const root = await client.rootOf(contract, epoch);
          if (root === record.root) return this.adoptAnchoring(client, record);
          this.log.warn(`epoch ${epoch}: transaction ${record.tx} reverted (gas used ${receipt.gasUsed}); sending again with more gas`);
          this.moreGas(epoch);
          return this.send(client, record);
        }
        if (await client.known(record.tx as Hex)) {
          const ticks = (this.pendingTicks.get(epoch) ?? 0) + 1;
          this.pendingTicks.set(epoch, ticks);
          // Stuck in the pool (fees too low for the chain): the same nonce with higher fees.
          if (ticks >= STUCK_ROUNDS && record.nonce !== null) {
            this.pendingTicks.delete(epoch);
            this.log.warn(`epoch ${epoch}: transaction ${record.tx} pending for ${ticks} rounds; replacing it with higher fees`);
            return this.send(client, record, { nonce: record.nonce, replace: true, gas: ANCHOR_GAS });
          }
          return 'sent';
        }
        this.pendingTicks.delete(epoch);
        const root = await client.rootOf(contract, epoch);
        if (root === record.root) return this.adoptAnchoring(client, record);
        this.log.warn(`epoch ${epoch}: transaction ${record.tx} was dropped by the node; sending again`);
        this.counters.resent++;
        return this.send(client, record);
      }
      case 'mined': {
        const receipt = record.tx ? await client.receipt(record.tx as Hex) : undefined;
        const root = await client.rootOf(contract, epoch);
        if (!receipt || root !== record.root) {
          if (root === record.root) return this.adoptAnchoring(client, record);
          this.log.warn(`epoch ${epoch}: transaction ${record.tx} is no longer in the chain (reorganised away, root reads ${root === ZERO_ROOT ? 'zero' : root}); sending again`);
          this.counters.resent++;
          return this.send(client, record);
        }
        if (head - receipt.blockNumber + 1n >= BigInt(this.options.confirmations)) {
          await ledger.update(epoch, { state: 'final', block: Number(receipt.blockNumber) });
          return 'final';
        }
        return 'mined';
      }
      case 'final':
        return 'final';
    }
  }

  private async send(client: ChainClient, record: EpochRecord, how: { nonce?: number; replace?: boolean; gas?: bigint } = {}): Promise<EpochRecord['state']> {
    const { ledger, contract } = this.options;
    const { epoch } = record;
    const nonce = how.nonce ?? await client.nonce('pending');
    const sends = record.sends + 1;
    // Recorded before sending: a restart after this line knows which nonce to look at.
    await ledger.update(epoch, { state: 'sending', nonce, sends, chainId: client.chainId, contract });
    let tx: Hex;
    try {
      tx = await client.send(contract, 'anchor', [BigInt(epoch), record.root], {
        nonce, gasFactor: this.gasFactors.get(epoch) ?? 1.25, feeFactor: how.replace ? 2 : 1, ...(how.gas ? { gas: how.gas } : {}),
      });
    } catch (err) {
      const failure = classifyChainError(err);
      if (failure.kind === 'revert' && failure.error === 'AlreadyAnchored') {
        const existing = String(failure.args[1]);
        if (existing === record.root) return this.adoptAnchoring(client, { ...record, nonce, sends });
        return this.conflict(record, existing);
      }
      if (failure.kind === 'gas') this.moreGas(epoch);
      if (failure.kind === 'nonce') {
        // Someone else used the nonce (another process with this key, or our earlier send): start over.
        await ledger.update(epoch, { state: 'built' });
      }
      throw new ChainError(failure);
    }
    await ledger.update(epoch, { state: 'sent', tx });
    this.counters.sent++;
    this.log.info(`epoch ${epoch}: transaction ${tx} sent (nonce ${nonce}${sends > 1 ? `, send ${sends}` : ''})`);
    return 'sent';
  }

  private moreGas(epoch: number): void {
    this.gasFactors.set(epoch, Math.min(8, (this.gasFactors.get(epoch) ?? 1.25) * 2));
  }

  /**
   * The root is ours already: our own earlier transaction, whose hash a crash kept us from
   * recording. In a block, its Anchored event names it; still in the pool (the node's
   * pending state has the root, so a new send is refused), we wait for it.
   */
  private async adoptAnchoring(client: ChainClient, record: EpochRecord): Promise<EpochRecord['state']> {
    const logs = await client.public.getContractEvents({
      address: this.options.contract, abi: REGISTRY_ABI, eventName: 'Anchored', args: { epoch: BigInt(record.epoch) }, fromBlock: 0n,
    });
    const found = logs.at(-1);
    if (!found) {
      await this.options.ledger.update(record.epoch, { state: 'sending' });
      const ticks = (this.pendingTicks.get(record.epoch) ?? 0) + 1;
      this.pendingTicks.set(record.epoch, ticks);
      if (ticks >= STUCK_ROUNDS && record.nonce !== null) {
        // Stuck (fees too low for the chain): the same nonce, higher fees, a fixed gas limit.
        this.pendingTicks.delete(record.epoch);
        return this.send(client, record, { nonce: record.nonce, replace: true, gas: ANCHOR_GAS });
      }
      this.log.info(`epoch ${record.epoch}: our earlier transaction (nonce ${record.nonce}) is pending; waiting for it to be mined`);
      return 'sending';
    }
    this.pendingTicks.delete(record.epoch);
    await this.options.ledger.update(record.epoch, { state: 'mined', tx: found.transactionHash, block: Number(found.blockNumber) });
    this.counters.mined++;
    this.log.info(`epoch ${record.epoch}: already anchored on chain (transaction ${found.transactionHash})`);
    return 'mined';
  }

  private conflict(record: EpochRecord, existing: string): never {
    // Another gateway (another state dir on the same contract) anchored this epoch: nothing
    // this one can fix; its readings stay provable only from its own ledger.
    throw new ChainError({ kind: 'other', message: `epoch ${record.epoch} holds root ${existing} on chain, not ours (${record.root}): another gateway anchors on this contract with other readings` });
  }

  private async relayPairings(client: ChainClient): Promise<void> {
    const { ledger, contract } = this.options;
    for (const relay of await ledger.pairings('sent')) {
      const receipt = await client.receipt(relay.tx as Hex);
      if (receipt?.status === 'success') {
        await ledger.updatePairing(relay.device, relay.nonce, 'done', relay.tx);
        this.counters.pairingsRelayed++;
        this.log.info(`pairing of ${relay.device} to ${relay.claim.owner} recorded on chain (transaction ${relay.tx})`);
      } else if (receipt || !(await client.known(relay.tx as Hex))) {
        await ledger.updatePairing(relay.device, relay.nonce, 'pending', null);
      }
    }
    for (const relay of await ledger.pairings('pending')) {
      const { owner, previousOwner, expires, signature } = relay.claim;
      try {
        const tx = await client.send(contract, 'pair', [relay.device, owner, previousOwner, relay.nonce, BigInt(expires), walletSignature(signature)], {
          nonce: await client.nonce('pending'), gasFactor: 1.25, feeFactor: 1,
        });
        await ledger.updatePairing(relay.device, relay.nonce, 'sent', tx);
      } catch (err) {
        const failure: ChainFailure = classifyChainError(err);
        // Not refused for good: the RPC, or this gateway not (yet) authorised.
        if (failure.kind !== 'revert' || failure.error === 'NotAuthorized') throw err;
        if (failure.error === 'NonceUsed' && sameOwner(await client.read<string>(contract, 'ownerOf', [relay.device]), owner)) {
          await ledger.updatePairing(relay.device, relay.nonce, 'done', null);
          continue;
        }
        // The chain refuses it for good (expired before it reached the chain, replaced owner, ...).
        await ledger.updatePairing(relay.device, relay.nonce, 'failed', null, `${failure.error}(${failure.args.map(String).join(', ')})`);
        this.log.warn(`pairing of ${relay.device} not recorded on chain: the contract refuses it with ${failure.error}`);
      }
    }
  }
}

/** Wallets give v as 27/28; some give 0/1, which the contract's ECDSA refuses. */
function walletSignature(signature: string): Hex {
  const v = parseInt(signature.slice(130, 132), 16);
  return (v < 27 ? signature.slice(0, 130) + (v + 27).toString(16) : signature) as Hex;
}

function sameOwner(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
