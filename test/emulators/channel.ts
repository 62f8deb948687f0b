// The channel: emulated radios on pseudo-terminals joined through the simulated LoRa
// medium (drivers/sim/medium.ts: airtime, collisions, range) in real time, so several
// `iop-agent run` processes form a mesh over "radios". Radios can be unplugged (their
// pty disappears) and plugged back in (a fresh modem on the same path).
import { realClock } from '../../drivers/clock.ts';
import { SimMedium, type SimLink } from '../../drivers/sim/medium.ts';
import { SeededRandom } from '../../drivers/sim/random.ts';
import { SF7_BW250, type LoraProfile } from '../../drivers/radio/lora-airtime.ts';
import type { Modem } from './modems.ts';
import { openPty, type Pty } from './pty.ts';

type PtyOpener = (path: string) => Promise<Pty>;

interface Slot { plugs: number; path: string; open: PtyOpener; make: () => Modem; link: SimLink; modem: Modem; pty: Pty | undefined; airLogs: Modem['airLog'][] }

export class Channel {
  readonly medium: SimMedium;
  private readonly slots: Slot[] = [];

  /** Radios `spacingM` apart on a line; with the default range each hears only its neighbours. */
  constructor(options: { rangeM?: number; seed?: number; profile?: LoraProfile } = {}) {
    this.medium = new SimMedium({ clock: realClock, random: new SeededRandom(options.seed ?? 1), rangeM: options.rangeM ?? 1000, profile: options.profile ?? SF7_BW250, latencyMs: 2 });
  }

  /**
   * Adds a radio at (x, 0) whose host side is a pty at `path` (made by socat; `open`
   * may instead attach to a terminal that exists, e.g. attachPty for QEMU's).
   */
  async add(path: string, x: number, make: () => Modem, open: PtyOpener = openPty): Promise<number> {
    const link = this.medium.add(x, 0);
    const index = this.slots.length;
    const slot: Slot = { plugs: 0, path, open, make, link, modem: make(), pty: undefined, airLogs: [] };
    this.slots.push(slot);
    link.onReceive((frame) => slot.modem.fromAir(frame.data, frame.rssi ?? -80, frame.snr ?? 10));
    await this.plug(index);
    return index;
  }

  connect(): void {
    this.medium.connect();
  }

  modem(index: number): Modem {
    return this.slots[index]!.modem;
  }

  /** Everything radio `index` put on air, across replugs. */
  airLog(index: number): Modem['airLog'] {
    const slot = this.slots[index]!;
    return [...slot.airLogs.flat(), ...slot.modem.airLog];
  }

  async unplug(index: number): Promise<void> {
    const slot = this.slots[index]!;
    await slot.pty?.close();
    slot.pty = undefined;
    this.medium.setUp(index, false);
  }

  /** A fresh modem (unconfigured, as after a power cycle) on the same path. */
  async plug(index: number): Promise<void> {
    const slot = this.slots[index]!;
    if (slot.pty) return;
    if (slot.plugs++ > 0) {
      slot.airLogs.push(slot.modem.airLog);
      slot.modem = slot.make();
    }
    const modem = slot.modem;
    const pty = await slot.open(slot.path);
    slot.pty = pty;
    modem.toHost = (bytes) => pty.write(bytes);
    modem.toAir = (data) => slot.link.send(data);
    pty.onData((bytes) => modem.fromHost(bytes));
    this.medium.setUp(index, true);
  }

  async close(): Promise<void> {
    for (const slot of this.slots) {
      await slot.pty?.close();
      slot.link.close();
    }
  }
}
