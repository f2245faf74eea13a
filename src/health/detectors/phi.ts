/**
 * Phi-accrual failure detector (Hayashibara et al., 2004) over the inter-arrival times of a
 * periodic signal such as a node's heartbeats. Instead of a yes/no after a fixed silence it
 * gives a suspicion level: phi = -log10(P(a heartbeat arrives later than now)), under a
 * normal model of the recent intervals. phi 1 ≈ 10 % chance the node is still alive but
 * late, phi 8 ≈ 10⁻⁸ (Akka and Cassandra use 8).
 *
 * The logistic approximation of the normal CDF is the one Akka uses; it is monotonic and
 * accurate to about 1e-3 over the range that matters.
 */
export interface PhiOptions {
  /** Number of intervals kept. Akka: 1000; 100 adapts faster. */
  windowSize: number;
  /** Standard deviation never taken below this, ms, so a very regular sender does not make
   *  a few ms of jitter look like a failure. Akka: 100 ms. */
  minStdDev: number;
  /** Silence tolerated on top of the mean before suspicion grows, ms (GC pauses, stalls). */
  acceptablePause: number;
  /** Interval assumed before two heartbeats have been seen, ms. */
  firstHeartbeatEstimate: number;
}

/** phi for a silence of `elapsed` ms given intervals of mean `mean` and deviation `std`. */
export function phi(elapsed: number, mean: number, std: number): number {
  const y = (elapsed - mean) / std;
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  if (elapsed > mean) return -Math.log10(e / (1 + e));
  return -Math.log10(1 - 1 / (1 + e));
}

/** phi at which a gap counts as a failure episode rather than an interval (see heartbeat()). */
export const OUTLIER_PHI = 8;

export class PhiAccrualDetector {
  private readonly intervals: number[] = [];
  private sum = 0;
  private sumSq = 0;
  private last: number | undefined;
  /** Failure-sized gaps skipped in a row (see heartbeat()). */
  private skipped = 0;

  constructor(private readonly opts: PhiOptions) {
    // Seed the window as Akka does, with the first estimate ± a quarter of it, so phi is
    // meaningful from the second heartbeat on.
    const first = opts.firstHeartbeatEstimate;
    const dev = first / 4;
    this.push(first - dev);
    this.push(first + dev);
  }

  private push(interval: number): void {
    this.intervals.push(interval);
    this.sum += interval;
    this.sumSq += interval * interval;
    if (this.intervals.length > this.opts.windowSize) {
      const old = this.intervals.shift()!;
      this.sum -= old;
      this.sumSq -= old * old;
    }
  }

  /**
   * Records a heartbeat arrival at `now` (ms). A gap the detector itself would call a
   * failure (phi ≥ OUTLIER_PHI when it ended: a frozen process, a partition) is not a
   * sample of the sender's rhythm, and is left out of the window: otherwise one 5 s freeze
   * inflates mean and deviation so much that the next freeze is suspected late and never
   * reaches `down`. Three such gaps in a row are the new rhythm, and are learned.
   */
  heartbeat(now: number): void {
    if (this.last !== undefined) {
      if (this.phi(now) >= OUTLIER_PHI && this.skipped < 3) this.skipped++;
      else {
        this.skipped = 0;
        this.push(Math.max(0, now - this.last));
      }
    }
    this.last = now;
  }

  /** Forgets the last arrival time (e.g. after a deliberate reconnect) but keeps the window. */
  resetArrival(): void {
    this.last = undefined;
  }

  get lastArrival(): number | undefined {
    return this.last;
  }

  get mean(): number {
    return this.sum / this.intervals.length;
  }

  get stdDev(): number {
    const n = this.intervals.length;
    const mean = this.sum / n;
    return Math.sqrt(Math.max(0, this.sumSq / n - mean * mean));
  }

  /** Suspicion level at `now`; 0 before the first heartbeat. */
  phi(now: number): number {
    if (this.last === undefined) return 0;
    const std = Math.max(this.stdDev, this.opts.minStdDev);
    return phi(now - this.last, this.mean + this.opts.acceptablePause, std);
  }

  /** Silence (ms after the last heartbeat) at which phi reaches `threshold`. */
  silenceFor(threshold: number): number {
    const std = Math.max(this.stdDev, this.opts.minStdDev);
    const mean = this.mean + this.opts.acceptablePause;
    let lo = 0;
    let hi = mean + 100 * std;
    for (let i = 0; i < 60; i++) {
      const mid = (lo + hi) / 2;
      if (phi(mid, mean, std) < threshold) lo = mid;
      else hi = mid;
    }
    return hi;
  }
}
