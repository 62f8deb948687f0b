// The chain client (viem over JSON-RPC HTTP): deploys and calls the registry contract,
// sends transactions with an explicit nonce and gas, and sorts every failure into what a
// caller does next: wait and retry (RPC down), take a fresh nonce, give more gas, or stop
// (the contract refused, with its custom error decoded).
import {
  BaseError, ContractFunctionRevertedError, HttpRequestError, TimeoutError, createPublicClient, createWalletClient, defineChain, http,
  type Chain, type Hex, type PublicClient, type TransactionReceipt, type WalletClient,
} from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import { IopError, errorMessage } from '../errors.ts';
import { ARTIFACTS, CHAIN_ABI, type ContractKind } from './artifact.ts';

export type Address = `0x${string}`;

export type ChainFailure =
  | { kind: 'down'; message: string }
  | { kind: 'nonce'; message: string }
  | { kind: 'gas'; message: string }
  | { kind: 'revert'; error: string; args: readonly unknown[]; message: string }
  | { kind: 'other'; message: string };

export class ChainError extends Error {
  override name = 'ChainError';
  readonly failure: ChainFailure;
  constructor(failure: ChainFailure) {
    super(failure.message);
    this.failure = failure;
  }
}

/** What went wrong in a chain call, for the retry policy. */
export function classifyChainError(err: unknown): ChainFailure {
  if (err instanceof ChainError) return err.failure;
  const message = shortMessage(err);
  if (err instanceof BaseError) {
    const revert = err.walk((e) => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null;
    if (revert?.data?.errorName) return { kind: 'revert', error: revert.data.errorName, args: revert.data.args ?? [], message };
    if (err.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError)) return { kind: 'down', message };
  }
  const text = `${message} ${err instanceof BaseError ? err.details ?? '' : ''}`.toLowerCase();
  if (/nonce too low|nonce too high|nonce has already been used|replacement transaction underpriced|already known|known transaction/.test(text)) return { kind: 'nonce', message };
  if (/out of gas|intrinsic gas too low|gas required exceeds|insufficient funds for gas/.test(text)) return { kind: 'gas', message };
  if (/fetch failed|econnrefused|econnreset|socket hang up|network|timed out|502|503/.test(text)) return { kind: 'down', message };
  return { kind: 'other', message };
}

function shortMessage(err: unknown): string {
  if (err instanceof BaseError) return err.shortMessage;
  return errorMessage(err);
}

export interface SendOptions {
  nonce: number;
  /** gas limit = estimate × this */
  gasFactor: number;
  /** fees × this: a replacement for a transaction with the same nonce must pay more */
  feeFactor: number;
  /** a gas limit instead of an estimate (a replacement cannot be estimated while the node's pending state has the original) */
  gas?: bigint;
}

export class ChainClient {
  readonly chainId: number;
  readonly rpc: string;
  readonly account: PrivateKeyAccount | undefined;
  private readonly chain: Chain;
  private readonly publicClient: PublicClient;
  private readonly walletClient: WalletClient | undefined;

  private constructor(rpc: string, chainId: number, account: PrivateKeyAccount | undefined, timeoutMs: number) {
    this.rpc = rpc;
    this.chainId = chainId;
    this.account = account;
    this.chain = defineChain({ id: chainId, name: `chain ${chainId}`, nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [rpc] } } });
    // Retries are the caller's: it knows what a failure means for an epoch.
    const transport = http(rpc, { retryCount: 0, timeout: timeoutMs });
    this.publicClient = createPublicClient({ chain: this.chain, transport });
    this.walletClient = account ? createWalletClient({ chain: this.chain, transport, account }) : undefined;
  }

  /** Asks the node its chain id (throws ChainError 'down' when it does not answer). */
  static async connect(rpc: string, account?: PrivateKeyAccount, timeoutMs = 10_000): Promise<ChainClient> {
    let url: URL;
    try {
      url = new URL(rpc);
    } catch {
      throw new IopError('USAGE', `'${rpc}' is not a JSON-RPC URL (http://host:port)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new IopError('USAGE', `${rpc}: only http and https JSON-RPC URLs are supported`);
    const probe = createPublicClient({ transport: http(rpc, { retryCount: 0, timeout: timeoutMs }) });
    try {
      return new ChainClient(rpc, await probe.getChainId(), account, timeoutMs);
    } catch (err) {
      throw new ChainError(classifyChainError(err));
    }
  }

  get address(): Address {
    if (!this.account) throw new IopError('CHAIN', 'no chain key given');
    return this.account.address;
  }

  async deploy(kind: ContractKind = 'registry'): Promise<{ contract: Address; transaction: Hex }> {
    const wallet = this.wallet();
    const { abi, bytecode } = ARTIFACTS[kind];
    const hash = await wallet.deployContract({ abi, bytecode, account: this.account!, chain: this.chain });
    const receipt = await this.publicClient.waitForTransactionReceipt({ hash, timeout: 120_000 });
    if (receipt.status !== 'success' || !receipt.contractAddress) throw new IopError('CHAIN', `deployment ${hash} failed (status ${receipt.status})`);
    return { contract: receipt.contractAddress, transaction: hash };
  }

  async read<T>(contract: Address, functionName: string, args: readonly unknown[]): Promise<T> {
    return await this.publicClient.readContract({ address: contract, abi: CHAIN_ABI, functionName, args }) as T;
  }

  rootOf(contract: Address, epoch: number): Promise<Hex> {
    return this.read<Hex>(contract, 'rootOf', [BigInt(epoch)]);
  }

  /** Estimates (which also runs it: a contract refusal surfaces here, decoded), then sends. */
  async send(contract: Address, functionName: string, args: readonly unknown[], options: SendOptions): Promise<Hex> {
    const wallet = this.wallet();
    const estimate = options.gas ?? await this.publicClient.estimateContractGas({ address: contract, abi: CHAIN_ABI, functionName, args, account: this.account! });
    const scale = (v: bigint) => (v * BigInt(Math.round(options.feeFactor * 100))) / 100n;
    const common = {
      address: contract, abi: CHAIN_ABI, functionName, args, account: this.account!, chain: this.chain,
      nonce: options.nonce, gas: (estimate * BigInt(Math.round(options.gasFactor * 100))) / 100n,
    };
    const fees = await this.publicClient.estimateFeesPerGas().catch((err: unknown) => {
      // A chain without EIP-1559 fees takes a legacy gas price; any other failure is the caller's.
      if (err instanceof BaseError && err.walk((e) => e instanceof BaseError && e.name === 'Eip1559FeesNotSupportedError')) return undefined;
      throw err;
    });
    if (!fees) return await wallet.writeContract({ ...common, gasPrice: scale(await this.publicClient.getGasPrice()) });
    return await wallet.writeContract({ ...common, maxFeePerGas: scale(fees.maxFeePerGas), maxPriorityFeePerGas: scale(fees.maxPriorityFeePerGas) });
  }

  /** The receipt, or undefined while the transaction is not in a block (pending, dropped, or reorged out). */
  async receipt(hash: Hex): Promise<TransactionReceipt | undefined> {
    try {
      return await this.publicClient.getTransactionReceipt({ hash });
    } catch (err) {
      if (err instanceof BaseError && err.name === 'TransactionReceiptNotFoundError') return undefined;
      throw err;
    }
  }

  /** Whether the node still knows the transaction (mined or waiting in its pool). */
  async known(hash: Hex): Promise<boolean> {
    try {
      await this.publicClient.getTransaction({ hash });
      return true;
    } catch (err) {
      if (err instanceof BaseError && err.name === 'TransactionNotFoundError') return false;
      throw err;
    }
  }

  /** Nonces: 'latest' counts mined transactions, 'pending' also those in the pool. */
  nonce(blockTag: 'latest' | 'pending'): Promise<number> {
    return this.publicClient.getTransactionCount({ address: this.address, blockTag });
  }

  blockNumber(): Promise<bigint> {
    return this.publicClient.getBlockNumber({ cacheTime: 0 });
  }

  waitForReceipt(hash: Hex, timeoutMs = 120_000): Promise<TransactionReceipt> {
    return this.publicClient.waitForTransactionReceipt({ hash, timeout: timeoutMs, pollingInterval: 250 });
  }

  get public(): PublicClient {
    return this.publicClient;
  }

  private wallet(): WalletClient {
    if (!this.walletClient || !this.account) throw new IopError('CHAIN', 'no chain key given');
    return this.walletClient;
  }
}
