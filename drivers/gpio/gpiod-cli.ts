// GPIO through the character device with libgpiod's command-line tools (Debian package
// `gpiod`), for kernels without sysfs GPIO. `gpioget` reads a level; one `gpiomon` per
// watched line runs as a child process, supervised: when it exits it is restarted with
// a backoff and the watch reports the gap. Both v1 (Debian 12: `gpiomon -F ... chip
// line`) and v2 (`gpiomon -c chip --format ...`) syntaxes are spoken.
//
// A watch is armed when the kernel holds the line's request for that gpiomon: edges
// from then on are queued by the kernel with their direction and none is lost. A
// spawned gpiomon takes a while to get there (hundreds of ms on a slow board), and v1
// prints nothing when it does, so `watch()` resolves only once `gpioinfo` shows the line
// used by gpiomon (or the monitor failed, which onError reports).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { describeLine, GpioError, type Bias, type Edge, type GpioProvider, type Level, type LineSpec, type LineWatch } from './line.ts';

export type GpiodVersion = 1 | 2;

const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** How long a starting gpiomon may take to hold its line before the watch reports it. */
const ARM_TIMEOUT_MS = 15_000;
const ARM_POLL_MS = 50;

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 5_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')}: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}

/** 1 or 2 from `gpiodetect --version`; undefined when the tools are not installed. */
export async function gpiodVersion(): Promise<GpiodVersion | undefined> {
  try {
    const out = await run('gpiodetect', ['--version']);
    return /v?2\.\d/.test(out.split('\n')[0] ?? '') ? 2 : 1;
  } catch {
    return undefined;
  }
}

function biasArgs(version: GpiodVersion, bias: Bias | undefined): string[] {
  if (!bias || bias === 'as-is') return [];
  return version === 1 ? ['-B', bias] : [`--bias=${bias}`];
}

export function gpiogetArgs(version: GpiodVersion, spec: LineSpec): string[] {
  return version === 1
    ? [...biasArgs(1, spec.bias), spec.chip, String(spec.line)]
    : ['--numeric', ...biasArgs(2, spec.bias), '-c', spec.chip, String(spec.line)];
}

export function gpiomonArgs(version: GpiodVersion, spec: LineSpec, edge: Edge): string[] {
  if (version === 1) {
    const edgeArgs = edge === 'rising' ? ['-r'] : edge === 'falling' ? ['-f'] : [];
    // %e: 1 rising, 0 falling; %s.%n: the kernel's monotonic timestamp. -b: stdout is a
    // pipe here, which v1 block-buffers by default: without it no edge arrives for minutes.
    return [...biasArgs(1, spec.bias), ...edgeArgs, '-b', '-F', '%e %s.%n', spec.chip, String(spec.line)];
  }
  // v2 %e: 1 rising, 2 falling; %S: seconds.nanoseconds.
  return [...biasArgs(2, spec.bias), `--edges=${edge}`, '--format=%e %S', '-c', spec.chip, String(spec.line)];
}

export function gpioinfoArgs(version: GpiodVersion, spec: LineSpec): string[] {
  return version === 1 ? [spec.chip] : ['-c', spec.chip, String(spec.line)];
}

/**
 * Whether `gpioinfo` output shows the line requested by gpiomon. v1:
 * `line   3:  unnamed  "gpiomon"  input  active-high [used]`; v2:
 * `line   3:  unnamed  input both-edges consumer="gpiomon"`.
 */
export function lineHeldByGpiomon(gpioinfo: string, line: number): boolean {
  const row = gpioinfo.split('\n').find((text) => new RegExp(`^\\s*line\\s+${line}:`).test(text));
  return row !== undefined && /"gpiomon"|consumer=gpiomon\b/.test(row);
}

/** Parses one gpiomon output line to (level after the edge, ms); undefined for other lines. */
export function parseGpiomonLine(version: GpiodVersion, line: string): { level: Level; monotonicMs: number } | undefined {
  const match = /^\s*(\d)\s+(\d+)\.(\d{1,9})\s*$/.exec(line);
  if (!match) return undefined;
  const event = Number(match[1]);
  const rising = event === 1;
  if (!rising && event !== (version === 1 ? 0 : 2)) return undefined;
  // v1's %n is printf("%ld", tv_nsec): not zero-padded, so "12.5000000" is 12 s and
  // 5 ms. v2's %S pads to nine digits, a decimal fraction either way. (Read as a
  // fraction, v1's short values made edges look milliseconds apart or out of order,
  // and debounce dropped real pulses.)
  const nanos = version === 1 ? Number(match[3]) : Number(match[3]!.padEnd(9, '0'));
  return { level: rising ? 1 : 0, monotonicMs: Number(match[2]) * 1000 + nanos / 1e6 };
}

export function createGpiodCliProvider(version: GpiodVersion, reason: string): GpioProvider {
  const watches = new Set<LineWatch>();
  return {
    backend: 'chardev',
    reason,
    async read(spec) {
      let out: string;
      try {
        out = await run('gpioget', gpiogetArgs(version, spec));
      } catch (err) {
        throw new GpioError(`${describeLine(spec)}: ${err instanceof Error ? err.message : String(err)}`);
      }
      const value = out.trim();
      if (value !== '0' && value !== '1') throw new GpioError(`${describeLine(spec)}: gpioget printed '${value.slice(0, 40)}'`);
      return value === '1' ? 1 : 0;
    },
    async watch(spec, edge, onEdge, onError) {
      let child: ChildProcess | undefined;
      let closed = false;
      let armed = false;
      let delay = RESTART_MIN_MS;
      let timer: NodeJS.Timeout | undefined;
      /** Resolves once this monitor holds the line (true) or is gone or timed out (false). */
      const arm = async (proc: ChildProcess): Promise<boolean> => {
        const end = performance.now() + ARM_TIMEOUT_MS;
        while (!closed && child === proc && proc.exitCode === null && proc.signalCode === null) {
          try {
            if (lineHeldByGpiomon(await run('gpioinfo', gpioinfoArgs(version, spec)), spec.line)) {
              armed = child === proc;
              return armed;
            }
          } catch {
            // gpioinfo failed (chip gone?): gpiomon itself will say why when it exits
          }
          if (performance.now() > end) {
            onError(new GpioError(`${describeLine(spec)}: gpiomon did not hold the line within ${ARM_TIMEOUT_MS} ms; edges may be missed until it does`));
            return false;
          }
          await new Promise((resolve) => setTimeout(resolve, ARM_POLL_MS));
        }
        return false;
      };
      const start = (): ChildProcess | undefined => {
        if (closed) return undefined;
        const startedAt = performance.now();
        const proc = spawn('gpiomon', gpiomonArgs(version, spec, edge), { stdio: ['ignore', 'pipe', 'pipe'] });
        child = proc;
        let pending = '';
        let stderr = '';
        proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
          pending += chunk;
          let newline: number;
          while ((newline = pending.indexOf('\n')) >= 0) {
            const parsed = parseGpiomonLine(version, pending.slice(0, newline));
            pending = pending.slice(newline + 1);
            if (parsed) onEdge(parsed);
          }
          if (pending.length > 4096) pending = '';
        });
        proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-500); });
        proc.on('error', (err) => onError(new GpioError(`${describeLine(spec)}: gpiomon: ${err.message}`)));
        proc.on('close', (code, signal) => {
          armed = false;
          if (child === proc) child = undefined;
          if (closed) return;
          // A monitor that ran a while was healthy: start again quickly.
          if (performance.now() - startedAt > RESTART_MAX_MS) delay = RESTART_MIN_MS;
          onError(new GpioError(`${describeLine(spec)}: gpiomon exited (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}; restarting in ${delay} ms`));
          timer = setTimeout(() => {
            const next = start();
            if (next) void arm(next);
          }, delay);
          timer.unref();
          delay = Math.min(RESTART_MAX_MS, delay * 2);
        });
        return proc;
      };
      const first = start();
      if (first) await arm(first);
      const watch: LineWatch = {
        armed: () => armed,
        async close() {
          closed = true;
          armed = false;
          clearTimeout(timer);
          watches.delete(watch);
          const proc = child;
          if (proc && proc.exitCode === null) {
            await new Promise<void>((resolve) => { proc.once('close', () => resolve()); proc.kill('SIGTERM'); });
          }
        },
      };
      watches.add(watch);
      return watch;
    },
    async close() {
      await Promise.all([...watches].map((w) => w.close()));
    },
  };
}
