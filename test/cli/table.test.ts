import { describe, expect, it } from "vitest";
import { renderSummary, renderTable, renderTransition } from "../../src/cli/table.ts";
import type { TargetSnapshot } from "../../src/health/target.ts";

function snap(id: string, state: TargetSnapshot["state"], reason: string): TargetSnapshot {
  return {
    id,
    tags: [],
    state,
    since: 1_000_000 - 65_000,
    reason,
    kind: null,
    evidence: {},
    checks: [
      {
        name: "tcp",
        type: "tcp",
        description: "tcp x",
        critical: true,
        verdict: "up",
        slow: false,
        warning: false,
        failures: 0,
        successes: 1,
        srtt: 1,
        timeout: 1000,
        interval: 2000,
        last:
          state === "down"
            ? {
                target: id,
                check: "tcp",
                at: 1,
                latency: 1,
                timeout: 1000,
                status: "fail",
                kind: "refused",
                errno: "ECONNREFUSED",
                message: "",
              }
            : null,
      },
    ],
    trends: {
      availability: { "1m": 1, "1h": state === "down" ? 0.5 : 1, "24h": 1 },
      flaps1h: 0,
      mttr: null,
      mtbf: null,
      latency: { p50: 0.4, p95: 1, p99: 12.5, samples: 10 },
      errors: {
        timeout: 0,
        refused: 0,
        reset: 0,
        unreachable: 0,
        dns: 0,
        tls: 0,
        protocol: 0,
        closed: 0,
        overloaded: 0,
      },
    },
  };
}

describe("live table", () => {
  it("renders one row per target with state, since, latency, availability, last error and reason", () => {
    const lines = renderTable(
      [snap("db-1", "healthy", "tcp passing (0.4 ms)"), snap("db-2", "down", "tcp: 3 consecutive failures")],
      {
        now: 1_000_000,
        width: 140,
        colour: false,
      },
    );
    expect(lines[0]).toMatch(/^TARGET\s+STATE\s+SINCE\s+P50\s+P99\s+AVAIL 1H\s+LAST ERROR\s+REASON$/);
    expect(lines[1]).toMatch(/^db-1\s+healthy\s+1m 5s\s+0\.4 ms\s+13 ms\s+100%\s+-\s+tcp passing/);
    expect(lines[2]).toMatch(
      /^db-2\s+down\s+1m 5s .*50\.00%\s+refused ECONNREFUSED\s+tcp: 3 consecutive failures$/,
    );
  });

  it("truncates the reason to the terminal width", () => {
    const lines = renderTable([snap("a", "suspect", "x".repeat(500))], {
      now: 1_000_000,
      width: 100,
      colour: false,
    });
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(100);
  });

  it("gives up minor columns on a narrow terminal so the reason stays readable", () => {
    const lines = renderTable([snap("node-1", "down", "tcp: 3 consecutive failures, last refused")], {
      now: 1_000_000,
      width: 80,
      colour: false,
    });
    expect(lines[0]).not.toContain("P99");
    expect(lines[0]).not.toContain("LAST ERROR");
    expect(lines[1]).toContain("tcp: 3 consecutive failures, last");
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
  });

  it("summarises and renders transitions", () => {
    expect(
      renderSummary([snap("a", "healthy", ""), snap("b", "healthy", ""), snap("c", "down", "")], false),
    ).toBe("3 targets: 2 healthy, 1 down");
    const line = renderTransition(
      {
        target: "a",
        from: "healthy",
        to: "suspect",
        at: Date.UTC(2026, 0, 1, 12, 0, 5),
        reason: "timeout",
        evidence: {},
      },
      false,
    );
    expect(line).toBe("12:00:05  a  healthy -> suspect  timeout");
  });
});
