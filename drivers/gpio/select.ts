// Chooses the GPIO path once at start. sysfs with onoff where the kernel has it (and the
// epoll addon loads); else the character device through libgpiod's tools. The reason
// is logged, so a box's log says which path it took and why.
import type { Sysfs } from '../sysfs.ts';
import { gpiodVersion, createGpiodCliProvider } from './gpiod-cli.ts';
import { GpioError, type GpioProvider } from './line.ts';
import { createOnoffProvider, loadOnoff } from './sysfs-onoff.ts';
import { SYSFS_GPIO } from './chips.ts';

export type GpioBackendChoice = 'auto' | 'sysfs' | 'chardev';

export async function selectGpioProvider(sysfs: Sysfs, choice: GpioBackendChoice): Promise<GpioProvider> {
  const problems: string[] = [];
  if (choice !== 'chardev') {
    if (!sysfs.exists(`${SYSFS_GPIO}/export`)) {
      problems.push(`no sysfs GPIO (${sysfs.path(SYSFS_GPIO)}/export missing: kernel without CONFIG_GPIO_SYSFS)`);
    } else {
      try {
        const Gpio = await loadOnoff();
        return createOnoffProvider(sysfs, choice === 'sysfs' ? 'sysfs chosen in hardware.gpio' : 'the kernel has sysfs GPIO and onoff loaded', Gpio);
      } catch (err) {
        problems.push(`onoff did not load (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
      }
    }
    if (choice === 'sysfs') throw new GpioError(`hardware.gpio is sysfs but ${problems.join('; ')}`);
  }
  const version = await gpiodVersion();
  if (version === undefined) throw new GpioError(`no GPIO path: ${[...problems, 'libgpiod tools (gpiomon, gpioget; Debian package gpiod) not on PATH'].join('; ')}`);
  const reason = choice === 'chardev' ? 'chardev chosen in hardware.gpio' : `character device through libgpiod v${version} tools: ${problems.join('; ')}`;
  return createGpiodCliProvider(version, reason);
}
