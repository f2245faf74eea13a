import type { Clock, Timer } from "../util/clock.ts";
import type { LocalHealthSettings } from "./settings.ts";

/**
 * Local health awareness (Lifeguard's idea, applied to a monitor): the monitor measures its
 * own event-loop lag by how late a periodic timer fires. While it lags it stretches probe
 * timeouts, and it remembers recent stalls so that a timeout that overlaps one is not blamed
 * on the target. Cassandra does the same for its phi detector after a long local pause.
 */
export interface Stall {
  /** Monotonic ms when the loop stopped running timers. */
  start: number;
  /** Monotonic ms when it ran again. */
  end: number;
}

const KEEP_STALLS = 64;
/** `lag()` is the largest lag of the last this-many seconds. */
const LAG_SECONDS = 10;

export class LocalHealth {
  private timer: Timer | undefined;
  /** Started by the engine (the sampler runs only when enabled as well). */
  private started = false;
  private expected = 0;
  private readonly stalls: Stall[] = [];
  /** Largest lag seen in each of the last seconds: fixed memory, however many timers. */
  private readonly lagBySecond: Array<{ second: number; lag: number }> = [];

  constructor(
    private readonly clock: Clock,
    private settings: LocalHealthSettings,
  ) {}

  reconfigure(settings: LocalHealthSettings): void {
    const wasStarted = this.started;
    this.stop();
    this.settings = settings;
    if (wasStarted) this.start();
  }

  start(): void {
    this.started = true;
    if (!this.settings.enabled || this.timer) return;
    this.expected = this.clock.now() + this.settings.sampleInterval;
    this.timer = this.clock.timeout(this.settings.sampleInterval, () => this.tick());
  }

  stop(): void {
    this.started = false;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private tick(): void {
    const now = this.clock.now();
    this.observe(this.expected, now);
    this.expected = now + this.settings.sampleInterval;
    this.timer = this.clock.timeout(this.settings.sampleInterval, () => this.tick());
  }

  /**
   * Records that a timer due at `due` ran at `ran`. The sampler calls this for itself, and
   * the engine calls it for every deadline timer, so that a stall is known even when the
   * deadline fires before the sampler does.
   */
  observe(due: number, ran: number): void {
    const lag = Math.max(0, ran - due);
    const second = Math.floor(ran / 1000);
    const last = this.lagBySecond[this.lagBySecond.length - 1];
    if (last?.second === second) last.lag = Math.max(last.lag, lag);
    else {
      this.lagBySecond.push({ second, lag });
      if (this.lagBySecond.length > LAG_SECONDS + 1) this.lagBySecond.shift();
    }
    if (lag >= this.settings.stallThreshold) {
      const last = this.stalls[this.stalls.length - 1];
      if (last && due <= last.end) last.end = Math.max(last.end, ran);
      else this.stalls.push({ start: due, end: ran });
      if (this.stalls.length > KEEP_STALLS) this.stalls.shift();
    }
  }

  /** Largest lag seen in the last 10 s, ms. */
  lag(): number {
    const cutoff = Math.floor(this.clock.now() / 1000) - LAG_SECONDS;
    let max = 0;
    for (const s of this.lagBySecond) if (s.second > cutoff) max = Math.max(max, s.lag);
    return max;
  }

  /** True when a stall overlaps the interval [start, end] (monotonic ms). */
  overlapsStall(start: number, end: number): boolean {
    if (!this.settings.enabled) return false;
    return this.stalls.some((s) => s.end >= start && s.start <= end);
  }

  /**
   * Milliseconds of [start, end] during which the monitor was stalled. An attempt's deadline
   * is moved back by this much: time the monitor could not run is not charged to a target.
   */
  stalledDuring(start: number, end: number): number {
    if (!this.settings.enabled) return 0;
    let total = 0;
    for (const s of this.stalls) total += Math.max(0, Math.min(end, s.end) - Math.max(start, s.start));
    return total;
  }

  /** Stretches a timeout while the loop lags: t + 2·lag, at most `maxStretch`·t. */
  stretch(timeout: number): number {
    if (!this.settings.enabled) return timeout;
    return stretchTimeout(timeout, this.lag(), this.settings.maxStretch);
  }
}

/** t + 2·lag, capped at maxStretch·t (a pure function, tested against a table). */
export function stretchTimeout(timeout: number, lag: number, maxStretch: number): number {
  return Math.min(timeout * maxStretch, timeout + 2 * Math.max(0, lag));
}
