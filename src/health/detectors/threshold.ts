/**
 * The threshold detector (HAProxy's `fall` / `rise`), extended with suspicion.
 *
 *   unknown ──ok──▶ up                      up ──fail──▶ suspect (or down when fall = 1)
 *   suspect ──ok──▶ up                 suspect ──fail × fall──▶ down  (if conviction allowed)
 *   down ──ok──▶ recovering (or up when rise = 1)
 *   recovering ──ok × rise──▶ up       recovering ──fail──▶ down
 *
 * Conviction can be held back by the caller (`canConvict = false`) while evidence is still
 * outstanding, e.g. a patient attempt that may yet prove the target slow rather than dead.
 */
export type Verdict = "unknown" | "up" | "suspect" | "down" | "recovering";

export interface ThresholdOptions {
  /** Consecutive failures that make a target down. 1 = no suspicion (the seed). */
  fall: number;
  /** Consecutive successes that bring a down target back up. */
  rise: number;
}

export class ThresholdDetector {
  private state: Verdict = "unknown";
  private fails = 0;
  private oks = 0;

  constructor(private opts: ThresholdOptions) {}

  get verdict(): Verdict {
    return this.state;
  }

  /** Consecutive failures in the current run. */
  get failures(): number {
    return this.fails;
  }

  /** Consecutive successes in the current run. */
  get successes(): number {
    return this.oks;
  }

  reconfigure(opts: ThresholdOptions): void {
    this.opts = opts;
  }

  success(): Verdict {
    this.fails = 0;
    this.oks++;
    switch (this.state) {
      case "down":
      case "recovering":
        this.state = this.oks >= this.opts.rise ? "up" : "recovering";
        break;
      default:
        this.state = "up";
    }
    return this.state;
  }

  /** A failure; `conclusive` evidence convicts at once, whatever `fall` says. */
  failure(canConvict = true, conclusive = false): Verdict {
    this.oks = 0;
    this.fails++;
    if (conclusive) {
      this.state = "down";
      return this.state;
    }
    switch (this.state) {
      case "down":
        break;
      case "recovering":
        this.state = "down";
        break;
      default:
        this.state = this.fails >= this.opts.fall && canConvict ? "down" : "suspect";
    }
    return this.state;
  }

  /** Re-examines a held-back conviction once the outstanding evidence is in. */
  evaluate(canConvict: boolean): Verdict {
    if (this.state === "suspect" && canConvict && this.fails >= this.opts.fall) this.state = "down";
    return this.state;
  }
}
