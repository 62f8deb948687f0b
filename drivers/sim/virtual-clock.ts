// Discrete-event time for the simulator: timers fire in order of their due time, as
// fast as the CPU allows, so hours of mesh traffic take seconds.
import type { Clock, TimerHandle } from '../clock.ts';

interface Event { at: number; order: number; id: number; callback: () => void }

export class VirtualClock implements Clock {
  private time = 0;
  private order = 0;
  private nextId = 1;
  private readonly heap: Event[] = [];
  private readonly cancelled = new Set<number>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const event = { at: this.time + Math.max(0, ms), order: this.order++, id: this.nextId++, callback };
    this.push(event);
    return { id: event.id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle && 'id' in handle && typeof handle.id === 'number') this.cancelled.add(handle.id);
  }

  /** Runs every event due up to `until` (ms); returns the number run. */
  runUntil(until: number): number {
    let ran = 0;
    while (this.heap.length && this.heap[0]!.at <= until) {
      const event = this.pop();
      if (this.cancelled.delete(event.id)) continue;
      this.time = event.at;
      event.callback();
      ran++;
    }
    this.time = Math.max(this.time, until);
    return ran;
  }

  private push(event: Event): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): Event {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}
