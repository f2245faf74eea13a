import type { Clock, Timer } from "../../src/util/clock.ts";

/**
 * A simulation clock for thousands of members: timers in a binary heap (the test FakeClock
 * scans a list, fine for ten members, quadratic for a thousand). `run(ms)` fires due timers in
 * order; whenever simulated time enters a new millisecond it lets pending promise callbacks
 * run (reliable-channel responses resolve through promises), so a continuation runs less than
 * 1 ms of simulated time late.
 */
interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

export class SimClock implements Clock {
  private heap: Entry[] = [];
  private current = 0;
  private seq = 0;
  /** Timers fired so far. */
  fired = 0;

  now(): number {
    return this.current;
  }

  wall(): number {
    return Date.UTC(2026, 0, 1) + this.current;
  }

  timeout(ms: number, fn: () => void): Timer {
    const e: Entry = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.push(e);
    return {
      cancel: () => {
        e.cancelled = true;
      },
    };
  }

  immediate(fn: () => void): void {
    this.timeout(0, fn);
  }

  /** Advances simulated time by `ms`, firing every timer due meanwhile. */
  async run(ms: number): Promise<void> {
    const target = this.current + ms;
    let bucket = Math.floor(this.current);
    await flush();
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > target) break;
      this.pop();
      if (top.cancelled) continue;
      if (Math.floor(top.at) > bucket) {
        await flush();
        bucket = Math.floor(top.at);
      }
      this.current = Math.max(this.current, top.at);
      this.fired++;
      top.fn();
    }
    this.current = target;
    await flush();
  }

  /** Runs in steps of `step` ms until `cond` holds or `maxMs` passed; the time it took. */
  async until(cond: () => boolean, maxMs: number, step = 100): Promise<number | undefined> {
    const start = this.current;
    while (this.current - start < maxMs) {
      if (cond()) return this.current - start;
      await this.run(step);
    }
    return cond() ? this.current - start : undefined;
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
