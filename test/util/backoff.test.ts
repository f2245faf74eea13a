import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../src/util/backoff.ts";

describe("backoffDelay", () => {
  const base = { base: 100, cap: 1000 };
  // [attempt, jitter, random, expected]
  const cases: Array<[number, "full" | "equal" | "none", number, number]> = [
    [0, "none", 0.5, 100],
    [1, "none", 0.5, 200],
    [3, "none", 0.5, 800],
    [4, "none", 0.5, 1000], // capped
    [100, "none", 0.5, 1000], // no overflow
    [0, "full", 0, 0],
    [0, "full", 0.5, 50],
    [3, "full", 0.25, 200],
    [0, "equal", 0, 50],
    [0, "equal", 0.999999, 100],
    [5, "equal", 0.5, 750],
  ];
  it.each(cases)("attempt %d with %s jitter and random %d → %d", (attempt, jitter, r, expected) => {
    expect(backoffDelay(attempt, { ...base, jitter }, () => r)).toBeCloseTo(expected, 3);
  });

  it("honours another factor", () => {
    expect(backoffDelay(2, { base: 100, cap: 10_000, factor: 3, jitter: "none" })).toBe(900);
  });

  it("never exceeds the cap with full jitter", () => {
    for (let i = 0; i < 1000; i++) expect(backoffDelay(i % 20, base)).toBeLessThanOrEqual(1000);
  });
});
