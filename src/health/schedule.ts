import { backoffDelay } from "../util/backoff.ts";
import type { Random } from "../util/clock.ts";
import type { Verdict } from "./detectors/threshold.ts";
import type { CheckSettings } from "./settings.ts";

/**
 * When to run a check next. Pure functions of the verdict, the settings and a random
 * source, so the spreading of checks is tested without timers.
 *
 * - healthy / unknown: every `interval`, ±`jitter`
 * - suspect / recovering: every `fastInterval`, ±`jitter` (confirm or clear quickly)
 * - down: `interval` doubling per attempt with equal jitter, up to `downBackoffCap`
 *   (a dead target costs little; recovery returns the check to `interval`)
 */
type Timing = Pick<CheckSettings, "interval" | "fastInterval" | "jitter" | "downBackoffCap">;

/** First run of a newly added check: a random phase in [0, interval) spreads many targets. */
export function initialPhase(settings: Pick<CheckSettings, "interval" | "jitter">, random: Random): number {
  if (settings.jitter <= 0) return 0;
  return random() * settings.interval;
}

/** `delay` spread by ±`jitter` (a fraction of it). */
export function jittered(delay: number, jitter: number, random: Random): number {
  if (jitter <= 0) return delay;
  return Math.max(0, delay * (1 + jitter * (2 * random() - 1)));
}

/**
 * Delay from the start of the last attempt to the start of the next, ms. `downAttempts`
 * counts attempts made since the target went down (0 for the first).
 */
export function nextDelay(verdict: Verdict, settings: Timing, downAttempts: number, random: Random): number {
  switch (verdict) {
    case "suspect":
    case "recovering":
      return jittered(settings.fastInterval, settings.jitter, random);
    case "down": {
      if (settings.downBackoffCap <= settings.interval)
        return jittered(settings.interval, settings.jitter, random);
      return backoffDelay(
        downAttempts,
        { base: settings.interval, cap: settings.downBackoffCap, factor: 2, jitter: "equal" },
        random,
      );
    }
    default:
      return jittered(settings.interval, settings.jitter, random);
  }
}
