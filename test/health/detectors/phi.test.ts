import { describe, expect, it } from "vitest";
import { PhiAccrualDetector, phi } from "../../../src/health/detectors/phi.ts";

describe("phi", () => {
  // [elapsed, mean, std, expected phi (±0.05)]
  const cases: Array<[number, number, number, number]> = [
    [1000, 1000, 100, 0.3], // at the mean: P(later) = 0.5 → phi ≈ 0.3
    [1100, 1000, 100, 0.8], // one sigma: P ≈ 0.16 → phi ≈ 0.8
    [1200, 1000, 100, 1.64], // two sigma: P ≈ 0.023
    [1300, 1000, 100, 2.87], // three sigma: P ≈ 0.00135
    [500, 1000, 100, 0],
  ];
  it.each(cases)("elapsed %d, mean %d, std %d → %d", (elapsed, mean, std, expected) => {
    expect(phi(elapsed, mean, std)).toBeCloseTo(expected, 1);
  });

  it("is monotonic in the elapsed time", () => {
    let prev = -1;
    for (let t = 0; t <= 5000; t += 50) {
      const v = phi(t, 1000, 200);
      expect(v).toBeGreaterThanOrEqual(prev);
      prev = v;
    }
  });
});

describe("PhiAccrualDetector", () => {
  const opts = { windowSize: 100, minStdDev: 100, acceptablePause: 0, firstHeartbeatEstimate: 1000 };

  it("is 0 before any heartbeat and low right after one", () => {
    const d = new PhiAccrualDetector(opts);
    expect(d.phi(5000)).toBe(0);
    d.heartbeat(0);
    expect(d.phi(10)).toBeLessThan(0.1);
  });

  it("rises with silence after regular heartbeats and crosses 8 within a few intervals", () => {
    const d = new PhiAccrualDetector(opts);
    for (let t = 0; t <= 10_000; t += 1000) d.heartbeat(t);
    expect(d.phi(10_900)).toBeLessThan(1);
    expect(d.phi(12_500)).toBeGreaterThan(3);
    expect(d.phi(14_000)).toBeGreaterThan(8);
    const silence = d.silenceFor(8);
    expect(silence).toBeGreaterThan(1000);
    expect(silence).toBeLessThan(2000);
    expect(d.phi(10_000 + silence)).toBeCloseTo(8, 1);
  });

  it("tolerates more silence when intervals vary more, and with an acceptable pause", () => {
    const steady = new PhiAccrualDetector(opts);
    const jumpy = new PhiAccrualDetector(opts);
    const paused = new PhiAccrualDetector({ ...opts, acceptablePause: 3000 });
    let t = 0;
    for (let i = 0; i < 50; i++) {
      steady.heartbeat(i * 1000);
      paused.heartbeat(i * 1000);
      t += i % 2 === 0 ? 500 : 1500;
      jumpy.heartbeat(t);
    }
    expect(jumpy.silenceFor(8)).toBeGreaterThan(steady.silenceFor(8));
    expect(paused.silenceFor(8)).toBeGreaterThan(steady.silenceFor(8) + 2900);
  });

  it("a failure-sized gap (a freeze) does not enter the window, so the next freeze is detected as fast", () => {
    const d = new PhiAccrualDetector({
      windowSize: 100,
      minStdDev: 50,
      acceptablePause: 0,
      firstHeartbeatEstimate: 250,
    });
    let t = 0;
    const beat = (gap: number) => {
      t += gap;
      d.heartbeat(t);
    };
    for (let i = 0; i < 40; i++) beat(250);
    const before = d.silenceFor(8);
    beat(5000); // frozen for 5 s, then back
    for (let i = 0; i < 10; i++) beat(250);
    expect(d.silenceFor(8)).toBeCloseTo(before, 0);
    // Three such gaps in a row are the sender's new rhythm, and are learned.
    for (let i = 0; i < 4; i++) beat(5000);
    expect(d.mean).toBeGreaterThan(300);
  });

  it("keeps only windowSize intervals", () => {
    const d = new PhiAccrualDetector({ ...opts, windowSize: 10 });
    for (let i = 0; i < 100; i++) d.heartbeat(i * 100);
    expect(d.mean).toBeCloseTo(100, 6);
    expect(d.stdDev).toBeCloseTo(0, 6);
  });
});
