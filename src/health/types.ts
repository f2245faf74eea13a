import type { Clock } from "../util/clock.ts";
import type { ErrorKind } from "./kinds.ts";

/** The states of a target (DESIGN §2). */
export const TARGET_STATES = [
  "unknown",
  "healthy",
  "degraded",
  "suspect",
  "down",
  "recovering",
  "draining",
  "disabled",
] as const;
export type TargetState = (typeof TARGET_STATES)[number];

/** States in which a target should receive traffic. */
export function isServing(state: TargetState): boolean {
  return state === "healthy" || state === "degraded" || state === "recovering";
}

/** The three outcomes of a check, as Consul and Nagios name them. */
export type CheckStatus = "pass" | "warn" | "fail";

/** What a probe says about one attempt. */
export interface ProbeOutcome {
  status: CheckStatus;
  /** One line for people: "connected", "HTTP 500 Internal Server Error". */
  message: string;
  /** Set on `warn` and `fail`. */
  kind?: ErrorKind;
  errno?: string;
  /** The failure is the monitor's own (out of descriptors...): not counted against the target. */
  local?: boolean;
  /** Strong evidence that skips suspicion: the target is down at once (a connection that
   *  broke, then a refused reconnect: the process is gone). Only for failures. */
  conclusive?: boolean;
  /** Latency the probe measured itself, ms, when it differs from wall time of the attempt. */
  latency?: number;
  /** Probe-specific facts: HTTP status, certificate days left, command output... */
  detail?: Record<string, unknown>;
}

export interface ProbeContext {
  /** Aborted when the attempt's deadline passes or the monitor stops: release everything. */
  signal: AbortSignal;
  /** The attempt's time budget, ms. The engine enforces it too; a probe may use it to size
   *  its own timers (a child process's kill timer, say). */
  deadline: number;
  clock: Clock;
}

/** One way of checking a target. Kept small so new kinds are easy to add. */
export interface Probe {
  run(ctx: ProbeContext): Promise<ProbeOutcome>;
  /** For passive checks (`ttl`): the service reports in. */
  report?(status: CheckStatus, message?: string): void;
  /** Releases anything the probe holds between attempts (a persistent connection). */
  close?(): void;
}

/** A result as the engine records it. */
export interface CheckResult extends ProbeOutcome {
  target: string;
  check: string;
  /** Wall-clock time the attempt ended, ms since the epoch. */
  at: number;
  /** ms from the start of the attempt to its outcome. */
  latency: number;
  /** The deadline this attempt was given, ms. */
  timeout: number;
  /** A timeout recorded while a patient attempt goes on; the target may still be slow. */
  provisional?: boolean;
  /** A success that arrived after the attempt's timeout (a slow, not a dead, target). */
  late?: boolean;
  /** Not counted: the monitor's own stall (or an outdated timeout) spoiled it. */
  spoiled?: string;
  /** From a passive check (a report, not a probe): its latency is only the wait. */
  passive?: boolean;
  /** A timeout the probe judged itself, before the engine's deadline (the heartbeat probe's
   *  phi): its message says what it saw; `timeout` is only the engine's safety net. */
  selfTimed?: boolean;
}

/** Evidence attached to a transition: why the engine decided. */
export interface Evidence {
  check?: string;
  kind?: ErrorKind;
  errno?: string;
  failures?: number;
  successes?: number;
  latency?: number;
  srtt?: number;
  timeout?: number;
  message?: string;
}

export interface Transition {
  target: string;
  from: TargetState;
  to: TargetState;
  /** Wall-clock ms. */
  at: number;
  reason: string;
  kind?: ErrorKind;
  errno?: string;
  evidence: Evidence;
}
