// Which devices the gateway accepts readings from: an allow-list file (one device id
// a line, # comments), ids given on the command line, or any device (demos, tests).
// Pairing fills the list later.
import { readFileSync } from 'node:fs';
import { identityFromId } from '../codec/identity.ts';
import { IopError, errorMessage } from '../errors.ts';

export class DeviceRegistry {
  private readonly allowed = new Set<string>();
  readonly allowAny: boolean;

  constructor(options: { allow?: string[]; allowFile?: string | undefined; allowAny?: boolean }) {
    this.allowAny = options.allowAny ?? false;
    for (const id of options.allow ?? []) this.add(id, '--allow');
    if (options.allowFile) {
      let text: string;
      try {
        text = readFileSync(options.allowFile, 'utf8');
      } catch (err) {
        throw new IopError('CONFIG', `cannot read allow-list ${options.allowFile}: ${errorMessage(err)}`, { path: options.allowFile });
      }
      text.split('\n').forEach((line, index) => {
        const id = line.replace(/#.*/, '').trim();
        if (id) this.add(id, `${options.allowFile}:${index + 1}`);
      });
    }
  }

  allows(device: string): boolean {
    return this.allowAny || this.allowed.has(device);
  }

  /** A device paired to an owner (gateway/pairings.ts) is allowed without --allow. */
  allowPaired(device: string): void {
    this.allowed.add(device);
  }

  get size(): number {
    return this.allowed.size;
  }

  private add(id: string, where: string): void {
    try {
      identityFromId(id);
    } catch (err) {
      throw new IopError('CONFIG', `${where}: ${errorMessage(err)}`);
    }
    this.allowed.add(id);
  }
}
