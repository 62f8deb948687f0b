// Honest time on a box without a real-time clock. A Pi boots at whatever time its
// clock says (1970, or the last shutdown's time with fake-hwclock) until NTP or a GPS
// sets it. The time keeper tells the sampler, at each tick, whether the wall clock can
// be trusted and by which source:
//   ntp   the kernel clock is synchronised (systemd-timesyncd's marker file, or the
//         kernel's adjtimex status through timedatectl, adjtimex or BusyBox's adjtimex)
//   gps   a GPS with a valid fix gave UTC less than an hour ago; the time is the
//         GPS time carried forward on the monotonic clock, not the system clock
//   none  neither: the reading carries only the time since boot (docs/protocol.md)
// A wall clock before the agent's release floor is never trusted, whatever a check says.
// A jump of the wall clock against the monotonic clock (more than a minute) is logged
// and counted; sequence numbers and the chain never depend on wall time.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.ts';

export type TimeQuality = 'ntp' | 'gps' | 'none';

export interface TimeStamp {
  /** Unix ms, only when trusted. */
  wallMs?: number | undefined;
  quality: TimeQuality;
  /** Seconds since the kernel booted (monotonic, survives clock jumps). */
  uptimeS: number;
  /** Identifies the boot the uptime counts from (8 hex digits of the kernel's boot_id). */
  boot: string;
}

export interface TimeSources {
  /** The system clock (Date.now). */
  wallMs(): number;
  /** Monotonic ms (performance.now). */
  monotonicMs(): number;
  /** Seconds since boot at monotonicMs() = 0. */
  uptimeAtOriginS: number;
  boot: string;
  /** True when the system says the clock is synchronised. */
  isSynchronised(): boolean;
}

/** Nothing this agent signs is older than this: a clock before it is wrong (2026-01-01). */
export const TRUSTED_FLOOR_MS = Date.UTC(2026, 0, 1);
const JUMP_MS = 60_000;
const GPS_VALID_MS = 3_600_000;
const KERNEL_SYNC_EVERY_MS = 600_000;

export interface TimeStatus {
  quality: TimeQuality;
  jumps: number;
  lastJumpS?: number | undefined;
  gpsFixAgeS?: number | undefined;
}

export class TimeKeeper {
  private readonly sources: TimeSources;
  private readonly log: Logger | undefined;
  /** wall − monotonic at the last check: a change beyond JUMP_MS is a jump. */
  private offsetMs: number | undefined;
  private gps: { utcMs: number; monotonicMs: number } | undefined;
  private jumps = 0;
  private lastJumpMs: number | undefined;
  private lastQuality: TimeQuality | undefined;

  constructor(sources: TimeSources, log?: Logger) {
    this.sources = sources;
    this.log = log;
  }

  /** A GPS sentence with a valid fix and date: UTC at that monotonic instant. */
  gpsTime(fix: { utcMs: number; monotonicMs: number }): void {
    if (fix.utcMs < TRUSTED_FLOOR_MS) return;
    this.gps = fix;
  }

  stamp(): TimeStamp {
    const monotonic = this.sources.monotonicMs();
    const wall = this.sources.wallMs();
    this.checkJump(wall, monotonic);
    const uptimeS = round3(this.sources.uptimeAtOriginS + monotonic / 1000);
    let stamp: TimeStamp;
    if (wall >= TRUSTED_FLOOR_MS && this.sources.isSynchronised()) {
      stamp = { wallMs: wall, quality: 'ntp', uptimeS, boot: this.sources.boot };
    } else if (this.gps && monotonic - this.gps.monotonicMs < GPS_VALID_MS) {
      stamp = { wallMs: Math.round(this.gps.utcMs + (monotonic - this.gps.monotonicMs)), quality: 'gps', uptimeS, boot: this.sources.boot };
    } else {
      stamp = { quality: 'none', uptimeS, boot: this.sources.boot };
    }
    if (stamp.quality !== this.lastQuality) {
      this.log?.info(`time quality ${this.lastQuality ?? 'at start'} -> ${stamp.quality}${stamp.quality === 'none' ? ': readings carry time since boot only' : ''}`);
      this.lastQuality = stamp.quality;
    }
    return stamp;
  }

  status(): TimeStatus {
    const monotonic = this.sources.monotonicMs();
    return {
      quality: this.lastQuality ?? 'none',
      jumps: this.jumps,
      lastJumpS: this.lastJumpMs === undefined ? undefined : round3(this.lastJumpMs / 1000),
      gpsFixAgeS: this.gps ? round3((monotonic - this.gps.monotonicMs) / 1000) : undefined,
    };
  }

  private checkJump(wall: number, monotonic: number): void {
    const offset = wall - monotonic;
    if (this.offsetMs !== undefined && Math.abs(offset - this.offsetMs) > JUMP_MS) {
      const jumpMs = offset - this.offsetMs;
      this.jumps++;
      this.lastJumpMs = jumpMs;
      this.log?.warn(`wall clock jumped ${jumpMs > 0 ? 'forwards' : 'backwards'} by ${Math.round(Math.abs(jumpMs) / 1000)} s (NTP or GPS set it, or someone did); sequence numbers are unaffected`);
    }
    this.offsetMs = offset;
  }
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** STA_UNSYNC in the kernel's adjtimex status: set while no NTP daemon disciplines the clock. */
const STA_UNSYNC = 0x40;

/** Synchronised or not from `adjtimex` output (BusyBox's applet, Debian's adjtimex -p): its `status:` line. */
export function parseAdjtimexStatus(output: string): boolean | undefined {
  const match = /^\s*status:\s*(\d+)/m.exec(output);
  return match ? (Number(match[1]) & STA_UNSYNC) === 0 : undefined;
}

function run(command: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 5_000 }, (err, stdout) => resolve(err ? undefined : stdout));
  });
}

/**
 * The kernel's view, from the first tool there is: timedatectl (systemd: NTPSynchronized
 * is the adjtimex status), else adjtimex itself (Debian's, or BusyBox's on small images).
 */
async function askKernelSync(): Promise<boolean | undefined> {
  const timedatectl = await run('timedatectl', ['show', '-p', 'NTPSynchronized', '--value']);
  if (timedatectl !== undefined && /^(yes|no)$/.test(timedatectl.trim())) return timedatectl.trim() === 'yes';
  for (const [command, args] of [['adjtimex', ['-p']], ['busybox', ['adjtimex']]] as const) {
    const out = await run(command, [...args]);
    const synced = out === undefined ? undefined : parseAdjtimexStatus(out);
    if (synced !== undefined) return synced;
  }
  return undefined;
}

/**
 * The box's own clock state. `root` is hardware.sysfsRoot: the marker file is read
 * under it (tests point it at a tree without one); the kernel is asked (askKernelSync)
 * only when the root is the real one, at most every ten minutes, and its answer cached.
 */
export function systemTimeSources(root = '/', log?: Logger): TimeSources {
  const marker = join(root, 'run/systemd/timesync/synchronized');
  let kernelSynced = false;
  let askedAt = -Infinity;
  const ask = () => {
    if (root !== '/' || performance.now() - askedAt < KERNEL_SYNC_EVERY_MS) return;
    askedAt = performance.now();
    void askKernelSync().then((synced) => {
      if ((synced ?? false) !== kernelSynced) log?.debug(`kernel clock ${synced ? 'synchronised' : 'not synchronised'}`);
      kernelSynced = synced ?? false;
    });
  };
  ask();
  return {
    wallMs: () => Date.now(),
    monotonicMs: () => performance.now(),
    uptimeAtOriginS: readUptimeS() - performance.now() / 1000,
    boot: readBootId(),
    isSynchronised: () => {
      ask();
      return existsSync(marker) || kernelSynced;
    },
  };
}

function readUptimeS(): number {
  try {
    return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) || 0;
  } catch {
    return 0;
  }
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').replace(/-/g, '').slice(0, 8);
  } catch {
    return '00000000';
  }
}
