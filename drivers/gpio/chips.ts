// Translates (chip, offset) to the global number the sysfs interface wants. Every chip
// appears as /sys/class/gpio/gpiochip<base> with `base`, `ngpio`, `label`, and a `device`
// link naming its character device (gpiochipN). On kernels before 6.6 a Pi's main chip
// has base 0, from 6.6 on 512 (Pi 4) or 571 (Pi 5): the same configuration works on both.
import type { Sysfs } from '../sysfs.ts';
import { describeLine, GpioError, type LineSpec } from './line.ts';

export interface SysfsChip {
  /** gpiochip<base> under sys/class/gpio */
  entry: string;
  base: number;
  ngpio: number;
  label: string;
  /** The character device's name (gpiochipN) when the kernel links it. */
  device: string | undefined;
}

export const SYSFS_GPIO = 'sys/class/gpio';

export async function listSysfsChips(sysfs: Sysfs): Promise<SysfsChip[]> {
  const chips: SysfsChip[] = [];
  for (const entry of await sysfs.list(SYSFS_GPIO)) {
    if (!/^gpiochip\d+$/.test(entry)) continue;
    const dir = `${SYSFS_GPIO}/${entry}`;
    const [base, ngpio, label] = await Promise.all(['base', 'ngpio', 'label'].map((f) => sysfs.readTrimmed(`${dir}/${f}`)));
    const device = sysfs.linkName(`${dir}/device`);
    chips.push({ entry, base: Number(base), ngpio: Number(ngpio), label: label!, device: device && /^gpiochip\d+$/.test(device) ? device : undefined });
  }
  return chips;
}

/** The global sysfs number of a line; a GpioError names the chips there are when it has none. */
export async function globalLineNumber(sysfs: Sysfs, spec: LineSpec): Promise<number> {
  const chips = await listSysfsChips(sysfs);
  const chip = chips.find((c) => c.label === spec.chip || c.device === spec.chip);
  if (!chip) {
    const known = chips.map((c) => `${c.device ?? c.entry} (${c.label}, base ${c.base})`).join(', ') || 'none';
    throw new GpioError(`${describeLine(spec)}: no such GPIO chip (chips: ${known})`);
  }
  if (!Number.isInteger(spec.line) || spec.line < 0 || spec.line >= chip.ngpio) {
    throw new GpioError(`${describeLine(spec)}: ${chip.label} has lines 0..${chip.ngpio - 1}`);
  }
  return chip.base + spec.line;
}
