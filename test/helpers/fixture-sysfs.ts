// Builds fixture sysfs trees (1-Wire, IIO, GPIO) under a temp dir for hardware.sysfsRoot.
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export class FixtureSysfs {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  file(relative: string, text: string): void {
    const path = join(this.root, relative);
    mkdirSync(dirname(path), { recursive: true });
    rmSync(path, { force: true, recursive: true });
    writeFileSync(path, text);
  }

  remove(relative: string): void {
    rmSync(join(this.root, relative), { force: true, recursive: true });
  }

  /** A file whose read fails with a real EIO from the kernel (/proc/self/mem at offset 0). */
  eio(relative: string): void {
    const path = join(this.root, relative);
    mkdirSync(dirname(path), { recursive: true });
    rmSync(path, { force: true });
    symlinkSync('/proc/self/mem', path);
  }

  link(relative: string, target: string): void {
    const path = join(this.root, relative);
    mkdirSync(dirname(path), { recursive: true });
    rmSync(path, { force: true });
    symlinkSync(target, path);
  }

  /** A DS18B20's w1_slave: crc YES/NO and t= in millidegrees. */
  ds18b20(id: string, milli: number, crc: 'YES' | 'NO' = 'YES'): void {
    this.file(`sys/bus/w1/devices/${id}/w1_slave`,
      `72 01 4b 46 7f ff 0e 10 57 : crc=57 ${crc}\n72 01 4b 46 7f ff 0e 10 57 t=${milli}\n`);
  }

  /** An IIO device with _input attributes (values in IIO units). */
  iio(index: number, name: string, inputs: Record<string, string>): void {
    this.file(`sys/bus/iio/devices/iio:device${index}/name`, `${name}\n`);
    for (const [attribute, value] of Object.entries(inputs)) this.file(`sys/bus/iio/devices/iio:device${index}/${attribute}`, `${value}\n`);
  }

  /** A sysfs GPIO chip: gpiochip<base> with label, ngpio and the link naming its character device. */
  gpioChip(base: number, label: string, ngpio: number, device: string): void {
    const dir = `sys/class/gpio/gpiochip${base}`;
    this.file(`${dir}/base`, `${base}\n`);
    this.file(`${dir}/label`, `${label}\n`);
    this.file(`${dir}/ngpio`, `${ngpio}\n`);
    this.link(`${dir}/device`, `../../../devices/platform/soc/${device}`);
    this.file('sys/class/gpio/export', '');
    this.file('sys/class/gpio/unexport', '');
  }
}
