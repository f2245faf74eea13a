import type { Clock } from "../util/clock.ts";
import type { CheckRunner } from "./check-runner.ts";
import type { Verdict } from "./detectors/threshold.ts";
import { TargetHistory, type Trends } from "./history.ts";
import type { ErrorKind } from "./kinds.ts";
import { type AdminFlags, assess } from "./state.ts";
import type { CheckResult, Evidence, TargetState, Transition } from "./types.ts";

export interface CheckSnapshot {
  name: string;
  type: string;
  description: string;
  critical: boolean;
  verdict: Verdict;
  slow: boolean;
  warning: boolean;
  failures: number;
  successes: number;
  /** Smoothed latency, ms. */
  srtt: number | null;
  /** Timeout the next attempt gets before stretching, ms. */
  timeout: number;
  /** Interval while healthy, ms. */
  interval: number;
  last: CheckResult | null;
}

/** A plain snapshot of a target: what `lifeline monitor`, the API and tests read. */
export interface TargetSnapshot {
  id: string;
  tags: string[];
  state: TargetState;
  /** Wall ms when the current state began. */
  since: number;
  reason: string;
  kind: ErrorKind | null;
  evidence: Evidence;
  checks: CheckSnapshot[];
  trends: Trends;
}

export interface TargetDeps {
  clock: Clock;
  onTransition(t: Transition): void;
}

/** One target: its checks, its state and its history. */
export class TargetRuntime {
  readonly runners = new Map<string, CheckRunner>();
  readonly descriptions = new Map<string, string>();
  readonly history: TargetHistory;
  tags: string[] = [];
  private current: TargetState = "unknown";
  private sinceAt: number;
  private why = "not checked yet";
  private evidence: Evidence = {};
  private readonly admin: AdminFlags = {};

  constructor(
    readonly id: string,
    private readonly deps: TargetDeps,
    resultCapacity: number,
    transitionCapacity: number,
  ) {
    this.history = new TargetHistory(resultCapacity, transitionCapacity);
    this.sinceAt = deps.clock.wall();
  }

  get state(): TargetState {
    return this.current;
  }

  get disabled(): boolean {
    return this.admin.disabled !== undefined;
  }

  setDisabled(reason: string | undefined): void {
    if (reason === undefined) delete this.admin.disabled;
    else this.admin.disabled = reason;
    this.recompute();
  }

  setDraining(reason: string | undefined): void {
    if (reason === undefined) delete this.admin.draining;
    else this.admin.draining = reason;
    this.recompute();
  }

  recordResult(result: CheckResult): void {
    this.history.record(result);
  }

  /** Re-derives the state from the checks; records and announces a change. */
  recompute(): void {
    const views = [...this.runners.values()].map((r) => r.view());
    const a = assess(views, this.admin);
    this.why = a.reason;
    this.evidence = a.evidence;
    if (a.state === this.current) return;
    const t: Transition = {
      target: this.id,
      from: this.current,
      to: a.state,
      at: this.deps.clock.wall(),
      reason: a.reason,
      evidence: a.evidence,
    };
    if (a.evidence.kind) t.kind = a.evidence.kind;
    if (a.evidence.errno) t.errno = a.evidence.errno;
    this.current = a.state;
    this.sinceAt = t.at;
    this.history.transition(t);
    this.deps.onTransition(t);
  }

  snapshot(): TargetSnapshot {
    const checks: CheckSnapshot[] = [...this.runners.values()].map((r) => {
      const v = r.view();
      const s = r.currentSettings;
      return {
        name: v.name,
        type: v.type,
        description: this.descriptions.get(v.name) ?? v.type,
        critical: v.critical,
        verdict: v.verdict,
        slow: v.slow,
        warning: v.warning,
        failures: v.failures,
        successes: v.successes,
        srtt: v.srtt ?? null,
        timeout: r.nextTimeout(),
        interval: s.interval,
        last: v.last ?? null,
      };
    });
    return {
      id: this.id,
      tags: this.tags,
      state: this.current,
      since: this.sinceAt,
      reason: this.why,
      kind: this.evidence.kind ?? null,
      evidence: this.evidence,
      checks,
      trends: this.history.trends(this.deps.clock.wall()),
    };
  }
}
