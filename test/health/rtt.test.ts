import { describe, expect, it } from "vitest";
import { type RttOptions, rttInit, rttSample, rttTimeout } from "../../src/health/rtt.ts";

const opts: RttOptions = { initial: 1000, min: 200, max: 8000, floor: 10 };

describe("RTT estimator (RFC 6298)", () => {
  it("starts at the initial timeout, clamped", () => {
    expect(rttInit(opts).rto).toBe(1000);
    expect(rttInit({ ...opts, initial: 50 }).rto).toBe(200);
    expect(rttInit({ ...opts, initial: 20_000 }).rto).toBe(8000);
  });

  // [samples, expected srtt, expected rttvar, expected rto]
  const cases: Array<[number[], number, number, number]> = [
    [[100], 100, 50, 300], // first sample: SRTT = R, RTTVAR = R/2, RTO = R + 4·R/2
    [[100, 100], 100, 37.5, 250], // RTTVAR = 3/4·50 + 1/4·0
    [[100, 300], 125, 87.5, 475], // RTTVAR = 3/4·50 + 1/4·200 ; SRTT = 7/8·100 + 1/8·300
    [[1], 1, 0.5, 200], // tiny RTT → clamped to min
    [[4000], 4000, 2000, 8000], // 4000 + 8000 → clamped to max
    [
      [100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100],
      100,
      0,
      200,
    ],
  ];
  it.each(cases)("samples %j → srtt %d, rttvar %d, rto %d", (samples, srtt, rttvar, rto) => {
    let s = rttInit(opts);
    for (const r of samples) s = rttSample(s, r, opts);
    expect(s.srtt).toBeCloseTo(srtt, 6);
    expect(s.rttvar).toBeCloseTo(rttvar, 0);
    expect(s.rto).toBeCloseTo(rto, 0);
    expect(s.samples).toBe(samples.length);
  });

  it("uses the floor when the variance is tiny", () => {
    let s = rttInit({ ...opts, min: 1 });
    for (let i = 0; i < 50; i++) s = rttSample(s, 100, { ...opts, min: 1 });
    expect(s.rto).toBeCloseTo(110, 0);
  });

  it("doubles on timeout up to max, and clears the estimate after two in a row", () => {
    let s = rttSample(rttInit(opts), 1000, opts); // rto 3000
    expect(s.rto).toBe(3000);
    s = rttTimeout(s, opts);
    expect(s.rto).toBe(6000);
    expect(s.srtt).toBe(1000);
    s = rttTimeout(s, opts);
    expect(s.rto).toBe(8000);
    expect(s.srtt).toBeUndefined();
    // the next sample re-seeds as a first sample
    s = rttSample(s, 200, opts);
    expect(s.srtt).toBe(200);
    expect(s.rttvar).toBe(100);
    expect(s.backoffs).toBe(0);
  });

  it("treats negative samples as zero", () => {
    const s = rttSample(rttInit(opts), -5, opts);
    expect(s.srtt).toBe(0);
  });
});
