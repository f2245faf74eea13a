import { describe, expect, it } from "vitest";
import { availability, meanTimes, TargetHistory } from "../../src/health/history.ts";
import type { TargetState, Transition } from "../../src/health/types.ts";

function tr(at: number, from: TargetState, to: TargetState): Transition {
  return { target: "t", from, to, at, reason: "", evidence: {} };
}

const MIN = 60_000;

describe("availability", () => {
  it("is null with no transitions or only unobserved time", () => {
    expect(availability([], 1000, MIN)).toBeNull();
    expect(availability([tr(0, "unknown", "disabled")], MIN, MIN)).toBeNull();
  });

  // [transitions, now, window, expected]
  const cases: Array<[Transition[], number, number, number]> = [
    [[tr(0, "unknown", "healthy")], MIN, MIN, 1],
    [[tr(0, "unknown", "healthy"), tr(30_000, "healthy", "down")], MIN, MIN, 0.5],
    [[tr(0, "unknown", "down")], MIN, MIN, 0],
    // suspect and degraded count as available; only down does not
    [
      [tr(0, "unknown", "healthy"), tr(10_000, "healthy", "suspect"), tr(20_000, "suspect", "degraded")],
      MIN,
      MIN,
      1,
    ],
    // time before the first transition is not observed
    [[tr(30_000, "unknown", "healthy"), tr(45_000, "healthy", "down")], MIN, MIN, 0.5],
    // window starts after an old down period ended
    [[tr(0, "unknown", "down"), tr(100_000, "down", "healthy")], 160_000, MIN, 1],
    // window starts during a down period
    [[tr(0, "unknown", "down"), tr(130_000, "down", "healthy")], 160_000, MIN, 0.5],
    // disabled time is not counted either way
    [
      [tr(0, "unknown", "healthy"), tr(20_000, "healthy", "disabled"), tr(40_000, "disabled", "down")],
      MIN,
      MIN,
      0.5,
    ],
  ];
  it.each(cases)("case %#", (transitions, now, window, expected) => {
    expect(availability(transitions, now, window)).toBeCloseTo(expected, 6);
  });
});

describe("meanTimes", () => {
  it("computes MTTR and MTBF from complete periods", () => {
    const ts = [
      tr(0, "unknown", "healthy"),
      tr(100, "healthy", "suspect"),
      tr(200, "suspect", "down"), // up 0..200
      tr(500, "down", "recovering"), // down 300
      tr(600, "recovering", "healthy"),
      tr(1500, "healthy", "down"), // up 500..1500 = 1000
      tr(1600, "down", "healthy"), // down 100
    ];
    const m = meanTimes(ts);
    expect(m.mttr).toBe(200);
    expect(m.mtbf).toBe(600);
  });

  it("is null without completed periods", () => {
    expect(meanTimes([tr(0, "unknown", "healthy")])).toEqual({ mttr: null, mtbf: null });
  });
});

describe("TargetHistory", () => {
  it("keeps bounded rings, counts kinds, ignores spoiled and provisional results in counters", () => {
    const h = new TargetHistory(3, 2);
    const base = { target: "t", check: "c", timeout: 1000, message: "" };
    h.record({ ...base, at: 1, latency: 10, status: "pass" });
    h.record({ ...base, at: 2, latency: 20, status: "pass" });
    h.record({ ...base, at: 3, latency: 0, status: "fail", kind: "refused" });
    h.record({ ...base, at: 4, latency: 0, status: "fail", kind: "timeout", provisional: true });
    h.record({ ...base, at: 5, latency: 0, status: "fail", kind: "timeout", spoiled: "stall" });
    expect(h.recentResults().map((r) => r.at)).toEqual([3, 4, 5]);
    expect(h.counters()).toEqual({ results: 3, failures: 1 });
    const trends = h.trends(10);
    expect(trends.errors.refused).toBe(1);
    expect(trends.errors.timeout).toBe(0);
    h.transition(tr(1, "unknown", "healthy"));
    h.transition(tr(2, "healthy", "down"));
    h.transition(tr(3, "down", "healthy"));
    expect(h.recentTransitions().map((t) => t.at)).toEqual([2, 3]);
    h.resize(10, 10);
    expect(h.recentResults()).toHaveLength(3);
  });

  it("reports latency percentiles of successful results", () => {
    const h = new TargetHistory(200, 10);
    for (let i = 1; i <= 100; i++) {
      h.record({ target: "t", check: "c", timeout: 1, message: "", at: i, latency: i, status: "pass" });
    }
    h.record({
      target: "t",
      check: "c",
      timeout: 1,
      message: "",
      at: 101,
      latency: 9999,
      status: "fail",
      kind: "timeout",
    });
    const t = h.trends(200);
    expect(t.latency).toEqual({ p50: 50, p95: 95, p99: 99, samples: 100 });
    expect(t.flaps1h).toBe(0);
  });
});
