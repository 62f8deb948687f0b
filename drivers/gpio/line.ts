// One interface for GPIO input lines, whatever the kernel offers: the sysfs interface
// through onoff (sysfs-onoff.ts) or the character device through libgpiod's command-line
// tools (gpiod-cli.ts). Lines are named by chip (label or gpiochipN) and offset, never by
// global number: global numbers moved with kernel 6.6 (chip bases 512, 571 on a Pi).

export type Edge = 'rising' | 'falling' | 'both';
export type Bias = 'pull-up' | 'pull-down' | 'disable' | 'as-is';
export type Level = 0 | 1;

export interface LineSpec {
  /** Chip label (e.g. pinctrl-bcm2711) or character-device name (gpiochip0). */
  chip: string;
  /** Offset of the line on that chip (the BCM number on a Pi's main chip). */
  line: number;
  bias?: Bias | undefined;
}

export interface EdgeEvent {
  /** The line's level after the edge. */
  level: Level;
  /** Monotonic ms of the edge (the kernel's timestamp where the backend has one). */
  monotonicMs: number;
}

export interface LineWatch {
  /** True while every edge from now on reaches onEdge (the kernel holds the watch's request). */
  armed(): boolean;
  close(): Promise<void>;
}

export interface GpioProvider {
  readonly backend: 'sysfs' | 'chardev';
  /** Why this backend was chosen; logged at start and in docs/hardware.md. */
  readonly reason: string;
  read(spec: LineSpec): Promise<Level>;
  /**
   * Calls onEdge for every edge; onError when the watch broke (it is restarted where it
   * can be). Resolves once the watch is armed, or when it could not be (onError said why).
   */
  watch(spec: LineSpec, edge: Edge, onEdge: (event: EdgeEvent) => void, onError: (error: Error) => void): Promise<LineWatch>;
  close(): Promise<void>;
}

export class GpioError extends Error {
  override name = 'GpioError';
}

export function describeLine(spec: LineSpec): string {
  return `${spec.chip} line ${spec.line}`;
}
