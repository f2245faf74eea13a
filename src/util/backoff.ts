import type { Random } from "./clock.ts";

/**
 * Exponential backoff with jitter, used for probing `down` targets and by the client when
 * every server has failed. Never a fixed sleep (the seed's 3 s): a thousand clients or
 * probes that failed together must not retry together.
 *
 * - `full`:  uniform in [0, d]           (AWS "full jitter": best spread, may retry early)
 * - `equal`: d/2 + uniform in [0, d/2]   (keeps at least half the delay)
 * - `none`:  d
 * where d = min(cap, base · factor^attempt).
 */
export type Jitter = "full" | "equal" | "none";

export interface BackoffOptions {
  /** Delay of the first retry before jitter, ms. */
  base: number;
  /** Upper bound of the delay before jitter, ms. */
  cap: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  jitter?: Jitter;
}

/** Delay before retry number `attempt` (0 = first retry), ms. */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: Random = Math.random): number {
  const factor = opts.factor ?? 2;
  const exp = Math.min(opts.cap, opts.base * factor ** Math.max(0, Math.min(attempt, 64)));
  const d = Math.max(0, exp);
  switch (opts.jitter ?? "full") {
    case "none":
      return d;
    case "equal":
      return d / 2 + random() * (d / 2);
    default:
      return random() * d;
  }
}
