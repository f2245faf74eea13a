import { applyHealthDelta, scaleByHealth } from "./math.ts";

/**
 * Lifeguard's local health multiplier (LHM): how much the local node doubts itself. The
 * score rises when there are signs that the local node, not its peers, is the slow one:
 * - a probe failed and the intermediaries' nacks did not arrive either (+1 per missing nack;
 *   +1 for the failed probe when nobody was asked),
 * - it had to refute a suspicion about itself (+1),
 * - its protocol timer fired late by more than `lagThreshold` (+1: a stalled event loop);
 * and falls by one on every probe answered in time. While it is above 0, the probe interval
 * and the probe timeout are multiplied by (score + 1), so a struggling node probes less and
 * waits longer before it suspects anyone: its own slowness stops producing false suspicions.
 */
export class Awareness {
  private value = 0;

  constructor(
    /** awarenessMaxMultiplier: the score stays in 0 .. max − 1. */
    private readonly max: number,
    private readonly onChange: (score: number, delta: number) => void = () => {},
  ) {}

  get score(): number {
    return this.value;
  }

  apply(delta: number): void {
    const next = applyHealthDelta(this.value, delta, this.max);
    if (next === this.value) return;
    const d = next - this.value;
    this.value = next;
    this.onChange(next, d);
  }

  /** `ms` stretched by the current score. */
  scale(ms: number): number {
    return scaleByHealth(ms, this.value);
  }
}
