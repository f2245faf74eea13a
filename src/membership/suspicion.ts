import type { Clock, Timer } from "../util/clock.ts";
import { remainingSuspicionTime } from "./math.ts";

/**
 * One suspicion of one member, with Lifeguard's dynamic timeout: it starts at `max` and is
 * shortened towards `min` each time another member independently suspects the same member
 * (each suspector counts once; the first suspector is not a confirmation). When the timer
 * runs out the member is declared dead, unless it refuted first (the owner cancels it).
 */
export class Suspicion {
  private readonly confirmers = new Set<string>();
  private readonly started: number;
  private timer: Timer;
  private fired = false;

  constructor(
    private readonly clock: Clock,
    /** Who raised the suspicion first. */
    readonly from: string,
    /** Confirmations wanted for the shortest timeout (see expectedConfirmations). */
    private readonly expected: number,
    readonly min: number,
    readonly max: number,
    private readonly onTimeout: (s: Suspicion) => void,
  ) {
    this.started = clock.now();
    this.timer = this.schedule();
  }

  /** Independent confirmations so far. */
  get confirmations(): number {
    return this.confirmers.size;
  }

  /** ms since the suspicion began. */
  get elapsed(): number {
    return this.clock.now() - this.started;
  }

  /** Total timeout as of now (shrinks with confirmations). */
  get timeout(): number {
    return remainingSuspicionTime(this.confirmers.size, this.expected, 0, this.min, this.max);
  }

  /**
   * Records that `from` suspects the member too. True when it is a new, independent
   * confirmation that shortened the timer (such a suspicion is worth re-gossiping).
   */
  confirm(from: string): boolean {
    if (this.fired || this.expected < 1 || from === this.from || this.confirmers.has(from)) return false;
    if (this.confirmers.size >= this.expected) return false;
    this.confirmers.add(from);
    this.timer.cancel();
    this.timer = this.schedule();
    return true;
  }

  cancel(): void {
    this.fired = true;
    this.timer.cancel();
  }

  private schedule(): Timer {
    const left = remainingSuspicionTime(
      this.confirmers.size,
      this.expected,
      this.elapsed,
      this.min,
      this.max,
    );
    return this.clock.timeout(Math.max(0, left), () => {
      if (this.fired) return;
      this.fired = true;
      this.onTimeout(this);
    });
  }
}
