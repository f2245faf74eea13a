/**
 * The knobs of one check, fully resolved (every duration in milliseconds). Defaults come
 * from a profile (`src/config/profiles.ts`), may be overridden in `defaults:` and again per
 * target and per check. Each field says its unit and what it trades.
 */
export interface TimeoutSettings {
  /**
   * `adaptive`: RFC 6298 estimator per check (SRTT + 4·RTTVAR clamped to [min, max]).
   * `fixed`: always `initial` — what the seed did (2 s), kept for comparison and for checks
   * whose latency says nothing (exec scripts).
   */
  mode: "adaptive" | "fixed";
  /** Timeout before the first answer is measured, ms. lan 2000. Clamped to [min, max]. */
  initial: number;
  /** Lowest adaptive timeout, ms. lan 1000 (RFC 6298's floor; one lost SYN costs Linux 1 s,
   *  so a lower value turns every lost SYN into a suspicion). */
  min: number;
  /** Highest timeout, ms, and the patience window (see `patience`). lan 8000. A connect-only
   *  check cannot tell a black-holed server from one that takes this long to accept until
   *  this long has passed: it bounds both slow-target tolerance and timeout detection. */
  max: number;
  /** Smallest variance margin added to SRTT, ms (RFC 6298's G). lan 50. */
  floor: number;
}

export interface CheckSettings {
  /** Time between checks of a healthy target, ms. lan 2000 (HAProxy's `inter`), classic 3000.
   *  Shorter finds failures sooner and costs more probes. */
  interval: number;
  /** Time between checks while `suspect` or `recovering`, ms. lan 500 (HAProxy's
   *  `fastinter`): confirms or clears a suspicion quickly. */
  fastInterval: number;
  /** Random spread of each interval, as a fraction of it (0.1 = ±10 %). lan 0.1, classic 0.
   *  Keeps checks of many targets from bunching up. */
  jitter: number;
  timeout: TimeoutSettings;
  /**
   * When a check times out, keep that attempt open until `timeout.max` and do not declare
   * the target down on timeouts until it has failed too. A server that is slow to accept
   * (the seed's ">4 s" case) then ends `degraded`, not `down`. lan true, classic false.
   */
  patience: boolean;
  /** Consecutive failures before `down`. lan 3, classic 1 (any failure is fatal). */
  fall: number;
  /** Consecutive successes before a `down` target is `healthy` again. lan 2, classic 1. */
  rise: number;
  /** Smoothed latency above which the target is `degraded` (slow), ms; 0 = never. lan 1000.
   *  It leaves `degraded` when the smoothed latency falls below 70 % of this (hysteresis). */
  slowThreshold: number;
  /** Longest wait between checks of a `down` target, ms. Waits grow from `interval`,
   *  doubling with jitter, up to this. lan 30000. A longer cap costs less against dead
   *  targets and notices recovery later. */
  downBackoffCap: number;
  /** When false, a failing check makes the target `degraded`, not `down`. Default true. */
  critical: boolean;
}

export interface LocalHealthSettings {
  /** Measure the monitor's own event-loop lag and discount what it spoils. lan true,
   *  classic false (the seed blamed its own stalls on targets). */
  enabled: boolean;
  /** How often the lag is sampled, ms. 100. */
  sampleInterval: number;
  /** A timer that fires this much late (ms) or more marks a stall. 100. */
  stallThreshold: number;
  /** Largest factor by which timeouts are stretched while lagging. 8 (as Lifeguard). */
  maxStretch: number;
}

export interface MonitorSettings {
  /** Most probes in flight at once across all targets. 512. Bounds descriptors and ports. */
  maxInFlight: number;
  /** `spread`: each check on its own timer with a random phase (lan).
   *  `sequential`: one loop over all targets, then sleep `interval` (the seed; classic). */
  scheduling: "spread" | "sequential";
  localHealth: LocalHealthSettings;
  /** Results kept per target for latency percentiles and the recent-results view. 512. */
  historyResults: number;
  /** State transitions kept per target (availability, flaps, MTTR/MTBF). 2000. */
  historyTransitions: number;
}
