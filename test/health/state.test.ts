import { describe, expect, it } from "vitest";
import type { Verdict } from "../../src/health/detectors/threshold.ts";
import { assess, type CheckView, describeFailure, nextSlow } from "../../src/health/state.ts";
import type { CheckResult, TargetState } from "../../src/health/types.ts";

function result(partial: Partial<CheckResult>): CheckResult {
  return {
    target: "t",
    check: "c",
    at: 0,
    latency: 1,
    timeout: 1000,
    status: "pass",
    message: "ok",
    ...partial,
  };
}

function view(partial: Partial<CheckView> & { verdict: Verdict }): CheckView {
  return {
    name: "tcp",
    type: "tcp",
    critical: true,
    slow: false,
    warning: false,
    failures: 0,
    successes: 1,
    fall: 3,
    rise: 2,
    srtt: 1,
    slowThreshold: 1000,
    last: result({}),
    ...partial,
  };
}

const refused = result({
  status: "fail",
  kind: "refused",
  errno: "ECONNREFUSED",
  message: "connect ECONNREFUSED",
});
const timeout = result({ status: "fail", kind: "timeout", message: "no answer", timeout: 2000 });

describe("assess: target state from its checks", () => {
  // [description, checks, admin, expected state, reason must contain]
  const cases: Array<[string, CheckView[], { disabled?: string; draining?: string }, TargetState, string]> = [
    ["nothing measured", [view({ verdict: "unknown", last: undefined })], {}, "unknown", "not checked"],
    ["one passing check", [view({ verdict: "up" })], {}, "healthy", "tcp passing"],
    [
      "one failure",
      [view({ verdict: "suspect", failures: 1, last: timeout })],
      {},
      "suspect",
      "1 of 3 failures, last timeout after 2.0 s",
    ],
    [
      "convicted",
      [view({ verdict: "down", failures: 3, last: refused })],
      {},
      "down",
      "3 consecutive failures, last refused (ECONNREFUSED)",
    ],
    ["coming back", [view({ verdict: "recovering", successes: 1 })], {}, "recovering", "1 of 2 successes"],
    [
      "slow",
      [view({ verdict: "up", slow: true, srtt: 6000 })],
      {},
      "degraded",
      "slow: smoothed latency 6.0 s over 1.0 s",
    ],
    [
      "warning",
      [
        view({
          verdict: "up",
          warning: true,
          last: result({ status: "warn", message: "certificate expires in 3 days" }),
        }),
      ],
      {},
      "degraded",
      "certificate expires in 3 days",
    ],
    [
      "non-critical check failing",
      [view({ verdict: "up" }), view({ name: "http", critical: false, verdict: "down", last: refused })],
      {},
      "degraded",
      "non-critical http failing",
    ],
    [
      "critical down beats non-critical",
      [
        view({ verdict: "down", failures: 3, last: refused }),
        view({ name: "http", critical: false, verdict: "up" }),
      ],
      {},
      "down",
      "tcp: 3 consecutive",
    ],
    [
      "down beats suspect",
      [
        view({ name: "a", verdict: "suspect", last: timeout }),
        view({ name: "b", verdict: "down", last: refused }),
      ],
      {},
      "down",
      "b:",
    ],
    ["disabled wins", [view({ verdict: "down" })], { disabled: "maintenance" }, "disabled", "maintenance"],
    ["draining wins over health", [view({ verdict: "up" })], { draining: "GOAWAY" }, "draining", "GOAWAY"],
    [
      "unknown critical ignored when another is up",
      [view({ verdict: "up" }), view({ name: "b", verdict: "unknown" })],
      {},
      "healthy",
      "all 2 checks passing",
    ],
    ["only non-critical checks", [view({ critical: false, verdict: "up" })], {}, "healthy", "passing"],
  ];
  it.each(cases)("%s", (_name, checks, admin, state, reason) => {
    const a = assess(checks, admin);
    expect(a.state).toBe(state);
    expect(a.reason).toContain(reason);
  });

  it("carries the evidence of the deciding check", () => {
    const a = assess([view({ verdict: "down", failures: 3, last: refused })]);
    expect(a.evidence).toMatchObject({ check: "tcp", kind: "refused", errno: "ECONNREFUSED", failures: 3 });
  });

  it("describes failures by kind and errno, never calling a timeout a refusal", () => {
    expect(describeFailure(timeout)).toBe("timeout after 2.0 s");
    expect(describeFailure(refused)).toBe("refused (ECONNREFUSED)");
    expect(
      describeFailure(
        result({ status: "fail", kind: "protocol", message: "HTTP 500 Internal Server Error" }),
      ),
    ).toBe("protocol: HTTP 500 Internal Server Error");
  });
});

describe("nextSlow (hysteresis)", () => {
  // [wasSlow, srtt, threshold, expected]
  const cases: Array<[boolean, number | undefined, number, boolean]> = [
    [false, 900, 1000, false],
    [false, 1001, 1000, true],
    [true, 800, 1000, true], // still above 70 %
    [true, 699, 1000, false],
    [true, undefined, 1000, true], // estimate cleared: keep
    [false, undefined, 1000, false],
    [true, 5000, 0, false], // disabled
  ];
  it.each(cases)("was %s, srtt %s, threshold %d → %s", (was, srtt, threshold, expected) => {
    expect(nextSlow(was, srtt, threshold)).toBe(expected);
  });
});
