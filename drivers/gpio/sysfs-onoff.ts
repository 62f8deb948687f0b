// GPIO through the kernel's sysfs interface with onoff (edges by its epoll addon, which
// a single executable loads from its addons directory, drivers/native/addons.ts).
// onoff always works on /sys/class/gpio; the chip's base (read under hardware.sysfsRoot)
// turns (chip, offset) into the global number it wants. sysfs cannot set a bias: a
// pull-up comes from the device tree (config.txt `gpio=17=ip,pu`) on this path.
import type { Sysfs } from '../sysfs.ts';
import { globalLineNumber } from './chips.ts';
import { describeLine, GpioError, type Edge, type EdgeEvent, type GpioProvider, type Level, type LineSpec, type LineWatch } from './line.ts';

interface OnoffGpio {
  readSync(): Level;
  watch(callback: (err: Error | null | undefined, value: Level) => void): void;
  unwatchAll(): void;
  unexport(): void;
}
type OnoffGpioClass = new (gpio: number, direction: 'in', edge?: 'none' | Edge) => OnoffGpio;

/**
 * Loads onoff (and so the epoll addon); rejects when the addon is missing or built for
 * another node. A dynamic import: bundled into the single executable, evaluated only
 * when a GPIO sensor is configured.
 */
export async function loadOnoff(): Promise<OnoffGpioClass> {
  const module = (await import('onoff')) as unknown as { Gpio?: OnoffGpioClass; default?: { Gpio: OnoffGpioClass } };
  const Gpio = module.Gpio ?? module.default?.Gpio;
  if (!Gpio) throw new Error('onoff has no Gpio export');
  return Gpio;
}

export function createOnoffProvider(sysfs: Sysfs, reason: string, Gpio: OnoffGpioClass): GpioProvider {
  const open = new Map<number, OnoffGpio>();

  const gpioFor = async (spec: LineSpec, edge: 'none' | Edge): Promise<{ gpio: OnoffGpio; number: number }> => {
    const number = await globalLineNumber(sysfs, spec);
    let gpio = open.get(number);
    try {
      if (!gpio || edge !== 'none') {
        gpio?.unexport();
        gpio = new Gpio(number, 'in', edge);
        open.set(number, gpio);
      }
    } catch (err) {
      throw new GpioError(`${describeLine(spec)} (sysfs gpio${number}): ${err instanceof Error ? err.message : String(err)}`);
    }
    return { gpio, number };
  };

  return {
    backend: 'sysfs',
    reason,
    async read(spec) {
      const { gpio, number } = await gpioFor(spec, 'none');
      try {
        return gpio.readSync();
      } catch (err) {
        open.delete(number);
        throw new GpioError(`${describeLine(spec)} (sysfs gpio${number}): ${err instanceof Error ? err.message : String(err)}`);
      }
    },
    async watch(spec, edge, onEdge: (event: EdgeEvent) => void, onError): Promise<LineWatch> {
      const { gpio, number } = await gpioFor(spec, edge);
      gpio.watch((err, value) => {
        if (err) onError(new GpioError(`${describeLine(spec)}: ${err.message}`));
        else onEdge({ level: value, monotonicMs: performance.now() });
      });
      let watching = true;
      return {
        // onoff set the edge and registered the value file with epoll before returning.
        armed: () => watching,
        async close() {
          watching = false;
          gpio.unwatchAll();
          gpio.unexport();
          open.delete(number);
        },
      };
    },
    async close() {
      for (const gpio of open.values()) {
        try { gpio.unwatchAll(); gpio.unexport(); } catch { /* already gone */ }
      }
      open.clear();
    },
  };
}
