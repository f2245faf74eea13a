import { quantile, Ring } from "../util/ring.ts";
import { ERROR_KINDS, type ErrorKind } from "./kinds.ts";
import type { CheckResult, TargetState, Transition } from "./types.ts";

/**
 * Per-target history (DESIGN §2, seed drawback 7): a bounded ring of results and one of
 * transitions, error-kind counters, and the trends computed from them on demand.
 */
export const WINDOWS = { "1m": 60_000, "1h": 3_600_000, "24h": 86_400_000 } as const;
export type WindowName = keyof typeof WINDOWS;

export interface Trends {
  /** Fraction of observed time the target was not `down`, per window; null when the
   *  window holds no observed time (only `unknown` / `disabled`). */
  availability: Record<WindowName, number | null>;
  /** Times the target went from serving to down in the last hour. */
  flaps1h: number;
  /** Mean time to recovery: mean length of completed down periods, ms. */
  mttr: number | null;
  /** Mean time between failures: mean length of the up periods between down periods, ms. */
  mtbf: number | null;
  /** Latency of recent successful results, ms. */
  latency: { p50: number | null; p95: number | null; p99: number | null; samples: number };
  /** Failed results by error kind since the monitor started. */
  errors: Record<ErrorKind, number>;
}

/** States whose time does not count toward availability either way. */
const UNOBSERVED: ReadonlySet<TargetState> = new Set(["unknown", "disabled"]);

/** Whether a result counts toward the totals and error kinds: spoiled and provisional ones
 *  do not (the same rule for `TargetHistory` and the lasting `HistoryStore`). */
export function isCounted(result: CheckResult): boolean {
  return !result.spoiled && !result.provisional;
}

/** The totals `counters()` and `trends().errors` report. */
export interface HistoryCounters {
  results: number;
  failures: number;
  errors: Partial<Record<ErrorKind, number>>;
}

/** History kept from an earlier run (`HistoryStore.restore`), oldest first. */
export interface SavedHistory {
  results: CheckResult[];
  transitions: Transition[];
  counters?: HistoryCounters;
}

/** Reason of the transition to `unknown` that `restore` adds where observation stopped. */
export const GAP_REASON = "not observed: the monitor was stopped or the target was not monitored";

function zeroKinds(): Record<ErrorKind, number> {
  return Object.fromEntries(ERROR_KINDS.map((k) => [k, 0])) as Record<ErrorKind, number>;
}

export class TargetHistory {
  private results: Ring<CheckResult>;
  private transitions: Ring<Transition>;
  private readonly kinds = zeroKinds();
  private total = 0;
  private failed = 0;

  constructor(resultCapacity: number, transitionCapacity: number) {
    this.results = new Ring(resultCapacity);
    this.transitions = new Ring(transitionCapacity);
  }

  resize(resultCapacity: number, transitionCapacity: number): void {
    if (resultCapacity !== this.results.capacity) this.results = this.results.resized(resultCapacity);
    if (transitionCapacity !== this.transitions.capacity)
      this.transitions = this.transitions.resized(transitionCapacity);
  }

  record(result: CheckResult): void {
    this.results.push(result);
    if (!isCounted(result)) return;
    this.total++;
    if (result.status === "fail") {
      this.failed++;
      if (result.kind) this.kinds[result.kind]++;
    }
  }

  transition(t: Transition): void {
    this.transitions.push(t);
  }

  /**
   * Pre-fills a new history with what an earlier run saved, and returns the transition to
   * `unknown` it appends at the last time that run observed the target (its last result or
   * transition), if the saved history does not already end in `unknown`. The time between
   * then and the next transition of this run (which starts `unknown`) is thus unobserved:
   * neither up nor down in `availability`, and no part of an MTTR/MTBF period. The caller
   * should persist the returned transition, so that the gap stays marked after the next
   * restart. Call it before recording anything.
   */
  restore(saved: SavedHistory): Transition | undefined {
    for (const r of saved.results) this.results.push(r);
    for (const t of saved.transitions) this.transitions.push(t);
    if (saved.counters) {
      this.total = saved.counters.results;
      this.failed = saved.counters.failures;
      for (const k of ERROR_KINDS) this.kinds[k] = saved.counters.errors[k] ?? 0;
    }
    const last = saved.transitions.at(-1);
    if (!last || last.to === "unknown") return undefined;
    const gap: Transition = {
      target: last.target,
      from: last.to,
      to: "unknown",
      at: Math.max(last.at, saved.results.at(-1)?.at ?? last.at),
      reason: GAP_REASON,
      evidence: {},
    };
    this.transitions.push(gap);
    return gap;
  }

  recentResults(limit = this.results.capacity): CheckResult[] {
    return this.results.toArray().slice(-limit);
  }

  recentTransitions(limit = this.transitions.capacity): Transition[] {
    return this.transitions.toArray().slice(-limit);
  }

  counters(): { results: number; failures: number } {
    return { results: this.total, failures: this.failed };
  }

  trends(now: number): Trends {
    const transitions = this.transitions.toArray();
    const ok = this.results
      .toArray()
      .filter((r) => r.status !== "fail" && !r.spoiled && !r.provisional && !r.passive);
    const latencies = ok.map((r) => r.latency);
    return {
      availability: {
        "1m": availability(transitions, now, WINDOWS["1m"]),
        "1h": availability(transitions, now, WINDOWS["1h"]),
        "24h": availability(transitions, now, WINDOWS["24h"]),
      },
      flaps1h: transitions.filter((t) => t.to === "down" && t.at >= now - WINDOWS["1h"]).length,
      ...meanTimes(transitions),
      latency: {
        p50: quantile(latencies, 0.5) ?? null,
        p95: quantile(latencies, 0.95) ?? null,
        p99: quantile(latencies, 0.99) ?? null,
        samples: latencies.length,
      },
      errors: { ...this.kinds },
    };
  }
}

/**
 * Fraction of the observed time in [now - window, now] that the target was not down,
 * reconstructed from its transitions (oldest first).
 */
export function availability(transitions: readonly Transition[], now: number, window: number): number | null {
  if (transitions.length === 0) return null;
  const start = now - window;
  let state: TargetState = transitions[0]!.from;
  let cursor = start;
  let observed = 0;
  let up = 0;
  const account = (until: number) => {
    const from = Math.max(cursor, start);
    const span = Math.max(0, Math.min(until, now) - from);
    if (span > 0 && !UNOBSERVED.has(state)) {
      observed += span;
      if (state !== "down") up += span;
    }
    cursor = Math.max(cursor, until);
  };
  // Time before the first recorded transition is unknown, not observed.
  cursor = Math.max(start, transitions[0]!.at);
  for (const t of transitions) {
    if (t.at > cursor) account(t.at);
    state = t.to;
    cursor = Math.max(cursor, t.at);
  }
  account(now);
  return observed > 0 ? up / observed : null;
}

/**
 * MTTR and MTBF from the completed down and up periods among the transitions. A transition
 * to `unknown` (nothing observed: the monitor was stopped, or the checks were replaced) ends
 * the period in progress without completing it.
 */
export function meanTimes(transitions: readonly Transition[]): { mttr: number | null; mtbf: number | null } {
  const downs: number[] = [];
  const ups: number[] = [];
  let downSince: number | undefined;
  let upSince: number | undefined;
  for (const t of transitions) {
    if (t.to === "unknown") {
      downSince = undefined;
      upSince = undefined;
    } else if (t.to === "down" && t.from !== "down") {
      if (upSince !== undefined) ups.push(t.at - upSince);
      upSince = undefined;
      downSince = t.at;
    } else if (t.from === "down" && t.to !== "down" && downSince !== undefined) {
      downs.push(t.at - downSince);
      downSince = undefined;
      upSince = t.at;
    } else if (upSince === undefined && downSince === undefined && t.to !== "disabled") {
      upSince = t.at;
    }
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  return { mttr: mean(downs), mtbf: mean(ups) };
}
