/**
 * The clock every time-dependent component takes as a collaborator, so that unit tests run
 * on fake time (see `FakeClock`) and production runs on the real one.
 *
 * `now()` is monotonic (it never jumps when the wall clock is adjusted) and is what all
 * durations are measured with; `wall()` is only for timestamps shown to people.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds (fractional). */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for timestamps. */
  wall(): number;
  /** Calls `fn` after `ms` milliseconds. */
  timeout(ms: number, fn: () => void): Timer;
  /**
   * Calls `fn` after I/O that is already pending has been processed (Node's check phase).
   * Used to re-examine a deadline: after a blocked event loop, timers run before the I/O
   * that completed while the loop was blocked, so a verdict taken inside a timer callback
   * would blame the target for the monitor's own stall.
   */
  immediate(fn: () => void): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  timeout(ms, fn) {
    const handle = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(handle) };
  },
  immediate(fn) {
    setImmediate(fn);
  },
};

/** Random source in [0, 1); injected wherever jitter is drawn so tests are deterministic. */
export type Random = () => number;

/** A small seeded generator (mulberry32) for tests and simulations. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
