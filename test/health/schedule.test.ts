import { describe, expect, it } from "vitest";
import { initialPhase, jittered, nextDelay } from "../../src/health/schedule.ts";
import { seededRandom } from "../../src/util/clock.ts";

const timing = { interval: 2000, fastInterval: 500, jitter: 0.1, downBackoffCap: 30_000 };

describe("schedule", () => {
  // [verdict, downAttempts, random, expected]
  const cases: Array<[Parameters<typeof nextDelay>[0], number, number, number]> = [
    ["up", 0, 0.5, 2000],
    ["unknown", 0, 0.5, 2000],
    ["up", 0, 0, 1800], // -10 %
    ["up", 0, 1, 2200], // +10 %
    ["suspect", 0, 0.5, 500],
    ["recovering", 0, 0, 450],
    ["down", 0, 0, 1000], // equal jitter: [d/2, d]
    ["down", 0, 1, 2000],
    ["down", 3, 0.5, 12_000], // 2000·8 = 16000 → 8000 + 0.5·8000
    ["down", 10, 1, 30_000], // capped
  ];
  it.each(cases)("%s after %d down attempts, random %d → %d ms", (verdict, n, r, expected) => {
    expect(nextDelay(verdict, timing, n, () => r)).toBeCloseTo(expected, 6);
  });

  it("without a backoff cap above the interval, down targets keep the interval (classic)", () => {
    const classic = { interval: 3000, fastInterval: 3000, jitter: 0, downBackoffCap: 3000 };
    expect(nextDelay("down", classic, 7, () => 0.3)).toBe(3000);
  });

  it("spreads first runs over the interval, and not at all without jitter", () => {
    const random = seededRandom(42);
    const phases = Array.from({ length: 1000 }, () => initialPhase(timing, random));
    expect(Math.min(...phases)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...phases)).toBeLessThan(2000);
    // roughly uniform: every quarter of the interval gets a fair share
    for (let q = 0; q < 4; q++) {
      const n = phases.filter((p) => p >= q * 500 && p < (q + 1) * 500).length;
      expect(n).toBeGreaterThan(180);
      expect(n).toBeLessThan(320);
    }
    expect(initialPhase({ interval: 3000, jitter: 0 }, random)).toBe(0);
  });

  it("jitters within bounds", () => {
    const random = seededRandom(7);
    for (let i = 0; i < 500; i++) {
      const d = jittered(1000, 0.2, random);
      expect(d).toBeGreaterThanOrEqual(800);
      expect(d).toBeLessThanOrEqual(1200);
    }
    expect(jittered(1000, 0, random)).toBe(1000);
  });
});
