import type { Clock, Timer } from "./clock.ts";

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Lets real promise callbacks and real I/O callbacks that are already due run. */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A manual clock for tests. Time moves only through `advance`, which fires due timers in
 * order and, between them, lets promise callbacks and `immediate` callbacks run, so code
 * that awaits a probe inside a timer behaves as it would on the real loop.
 */
export class FakeClock implements Clock {
  private current: number;
  private readonly epoch: number;
  private seq = 0;
  private timers: Pending[] = [];
  private immediates: Array<() => void> = [];

  constructor(start = 0, epoch = Date.UTC(2026, 0, 1)) {
    this.current = start;
    this.epoch = epoch;
  }

  now(): number {
    return this.current;
  }

  wall(): number {
    return this.epoch + this.current;
  }

  timeout(ms: number, fn: () => void): Timer {
    const entry: Pending = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  immediate(fn: () => void): void {
    this.immediates.push(fn);
  }

  /** Number of timers still waiting to fire. */
  pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Runs immediates and promise callbacks until nothing more is queued. */
  async settle(): Promise<void> {
    for (let i = 0; i < 50; i++) {
      await flushMicrotasks();
      if (this.immediates.length === 0) {
        await flushMicrotasks();
        if (this.immediates.length === 0) return;
      }
      const batch = this.immediates;
      this.immediates = [];
      for (const fn of batch) fn();
    }
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    await this.settle();
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      let next: Pending | undefined;
      for (const t of this.timers) {
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.current = Math.max(this.current, next.at);
      next.cancelled = true;
      next.fn();
      await this.settle();
    }
    this.current = target;
    await this.settle();
  }

  /**
   * Simulates a blocked event loop: time jumps by `ms` without firing anything, as when a
   * synchronous task holds the thread. Timers that fell due fire on the next `advance`.
   */
  stall(ms: number): void {
    this.current += ms;
  }
}
