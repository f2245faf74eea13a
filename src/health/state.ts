import { formatMs as ms } from "../util/format.ts";
import type { Verdict } from "./detectors/threshold.ts";
import type { CheckResult, Evidence, TargetState } from "./types.ts";

/**
 * How a target's state follows from its checks — a pure function, so every transition of
 * the state machine is tested from a table.
 *
 * In order of precedence:
 *   disabled (operator) → draining (announced) → down (a critical check convicted) →
 *   suspect (a critical check failing, not yet convicted) → unknown (nothing measured) →
 *   recovering (a critical check coming back, not yet `rise` successes) →
 *   degraded (slow, warning, overloaded, or a non-critical check failing) → healthy.
 */
export interface CheckView {
  name: string;
  type: string;
  critical: boolean;
  verdict: Verdict;
  /** Smoothed latency is over the check's slow threshold (with hysteresis). */
  slow: boolean;
  /** The last result was a warning (Consul's "warning", HTTP 429, a certificate near expiry). */
  warning: boolean;
  failures: number;
  successes: number;
  fall: number;
  rise: number;
  srtt: number | undefined;
  slowThreshold: number;
  last: CheckResult | undefined;
}

export interface AdminFlags {
  disabled?: string;
  draining?: string;
}

export interface Assessment {
  state: TargetState;
  reason: string;
  evidence: Evidence;
}

/** "timeout after 2.0 s (ETIMEDOUT)", "refused (ECONNREFUSED)", "HTTP 500 ...". */
export function describeFailure(r: CheckResult | undefined): string {
  if (!r) return "no result";
  const errno = r.errno ? ` (${r.errno})` : "";
  // An engine deadline says how long it waited; a probe that judged the silence itself
  // (the heartbeat probe) says what it saw.
  if (r.kind === "timeout")
    return r.selfTimed ? `timeout: ${r.message}${errno}` : `timeout after ${ms(r.timeout)}${errno}`;
  const kind = r.kind ?? "failed";
  // Node's messages repeat the errno ("connect ECONNREFUSED 127.0.0.1:80"): say it once.
  if (!r.message || r.message === kind || (r.errno && r.message.includes(r.errno))) return `${kind}${errno}`;
  return `${kind}: ${r.message}${errno}`;
}

function evidenceOf(c: CheckView): Evidence {
  const r = c.last;
  const e: Evidence = { check: c.name, failures: c.failures, successes: c.successes };
  if (r?.kind) e.kind = r.kind;
  if (r?.errno) e.errno = r.errno;
  if (r) {
    e.latency = r.latency;
    e.timeout = r.timeout;
    e.message = r.message;
  }
  if (c.srtt !== undefined) e.srtt = c.srtt;
  return e;
}

export function assess(checks: readonly CheckView[], admin: AdminFlags = {}): Assessment {
  if (admin.disabled !== undefined) {
    return {
      state: "disabled",
      reason: `disabled by operator${admin.disabled ? `: ${admin.disabled}` : ""}`,
      evidence: {},
    };
  }
  if (admin.draining !== undefined) {
    return {
      state: "draining",
      reason: `draining${admin.draining ? `: ${admin.draining}` : ""}`,
      evidence: {},
    };
  }
  const critical = checks.filter((c) => c.critical);
  const optional = checks.filter((c) => !c.critical);

  const down = critical.find((c) => c.verdict === "down");
  if (down) {
    const why = down.last?.conclusive
      ? describeFailure(down.last)
      : `${down.failures} consecutive failure${down.failures === 1 ? "" : "s"}, last ${describeFailure(down.last)}`;
    return {
      state: "down",
      reason: `${down.name}: ${why}`,
      evidence: evidenceOf(down),
    };
  }
  const suspect = critical.find((c) => c.verdict === "suspect");
  if (suspect) {
    return {
      state: "suspect",
      reason: `${suspect.name}: ${suspect.failures} of ${suspect.fall} failures, last ${describeFailure(suspect.last)}`,
      evidence: evidenceOf(suspect),
    };
  }
  const measured = (critical.length > 0 ? critical : optional).filter((c) => c.verdict !== "unknown");
  if (measured.length === 0) return { state: "unknown", reason: "not checked yet", evidence: {} };

  const recovering = critical.find((c) => c.verdict === "recovering");
  if (recovering) {
    return {
      state: "recovering",
      reason: `${recovering.name}: ${recovering.successes} of ${recovering.rise} successes after down`,
      evidence: evidenceOf(recovering),
    };
  }
  const warning = critical.find((c) => c.warning);
  if (warning) {
    return {
      state: "degraded",
      reason: `${warning.name}: warning: ${warning.last?.message ?? "warning"}`,
      evidence: evidenceOf(warning),
    };
  }
  const slow = critical.find((c) => c.slow) ?? optional.find((c) => c.slow);
  if (slow) {
    return {
      state: "degraded",
      reason: `${slow.name}: slow: smoothed latency ${ms(slow.srtt ?? 0)} over ${ms(slow.slowThreshold)}`,
      evidence: evidenceOf(slow),
    };
  }
  const failingOptional = optional.find((c) => c.verdict === "down" || c.verdict === "suspect" || c.warning);
  if (failingOptional) {
    const what = failingOptional.warning ? "warning" : "failing";
    return {
      state: "degraded",
      reason: `non-critical ${failingOptional.name} ${what}: ${describeFailure(failingOptional.last)}`,
      evidence: evidenceOf(failingOptional),
    };
  }
  const lead = critical[0] ?? optional[0]!;
  const latency = lead.last ? ` (${ms(lead.last.latency)})` : "";
  return {
    state: "healthy",
    reason: checks.length === 1 ? `${lead.name} passing${latency}` : `all ${checks.length} checks passing`,
    evidence: evidenceOf(lead),
  };
}

/**
 * Slow flag with hysteresis: on when the smoothed latency exceeds `threshold`, off again only
 * when it falls below 70 % of it, so a target hovering at the threshold does not flap.
 */
export const SLOW_EXIT_RATIO = 0.7;

export function nextSlow(wasSlow: boolean, srtt: number | undefined, threshold: number): boolean {
  if (threshold <= 0) return false;
  if (srtt === undefined) return wasSlow; // estimate cleared after timeouts: keep the last word
  return wasSlow ? srtt >= threshold * SLOW_EXIT_RATIO : srtt > threshold;
}
