import { describe, expect, it } from "vitest";
import {
  applyHealthDelta,
  expectedConfirmations,
  indirectProbeCount,
  ProbeOrder,
  PUSH_PULL_SCALE_THRESHOLD,
  pickRandom,
  pushPullInterval,
  remainingSuspicionTime,
  retransmitLimit,
  scaleByHealth,
  shuffle,
  suspicionTimeout,
} from "../../src/membership/math.ts";
import { seededRandom } from "../../src/util/clock.ts";

describe("suspicionTimeout = mult · max(1, log10 n) · interval", () => {
  // [mult, n, interval, expected ms]
  const cases: Array<[number, number, number, number]> = [
    [4, 0, 1000, 4000], // an empty view counts as one member
    [4, 1, 1000, 4000],
    [4, 5, 1000, 4000], // log10 5 < 1: the floor of 1 applies
    [4, 10, 1000, 4000],
    [4, 100, 1000, 8000],
    [4, 1000, 1000, 12000],
    [4, 50, 1000, 6795], // 4 · 1.69897 · 1000, floored
    [6, 10, 5000, 30000], // wan
    [3, 10, 1000, 3000], // local
  ];
  it.each(cases)("mult %d, n %d, interval %d → %d", (mult, n, interval, expected) => {
    expect(suspicionTimeout(mult, n, interval)).toBe(expected);
  });
});

describe("remainingSuspicionTime (Lifeguard: max → min as confirmations arrive)", () => {
  // [confirmations, expected k, elapsed, min, max, remaining]
  const cases: Array<[number, number, number, number, number, number]> = [
    [0, 3, 0, 2000, 30000, 30000], // nobody confirms: the longest
    [1, 3, 0, 2000, 30000, 16000], // 30 − 28·log 2/log 4 = 16
    [2, 3, 0, 2000, 30000, 7810], // 30 − 28·log 3/log 4 = 7.8105
    [3, 3, 0, 2000, 30000, 2000], // all confirmations: the shortest
    [4, 3, 0, 2000, 30000, 2000], // more than wanted changes nothing
    [1, 3, 5000, 2000, 30000, 11000], // elapsed is subtracted
    [3, 3, 5000, 2000, 30000, -3000], // already due
    [0, 0, 0, 4000, 24000, 4000], // no confirmations wanted: min at once
    [5, 0, 1000, 4000, 24000, 3000],
    [0, 2, 0, 4000, 24000, 24000], // lan with 5 members
    [1, 2, 0, 4000, 24000, 11381], // 24 − 20·log 2/log 3
    [2, 2, 0, 4000, 24000, 4000],
  ];
  it.each(cases)("c %d of k %d, elapsed %d, min %d, max %d → %d", (c, k, elapsed, min, max, expected) => {
    expect(remainingSuspicionTime(c, k, elapsed, min, max)).toBe(expected);
  });
});

describe("expectedConfirmations = mult − 2, when enough members could confirm", () => {
  const cases: Array<[number, number, number]> = [
    [4, 1, 0],
    [4, 3, 0], // only one other member besides suspect and self
    [4, 4, 2],
    [4, 100, 2],
    [6, 100, 4],
    [2, 100, 0],
    [1, 100, 0],
  ];
  it.each(cases)("mult %d, n %d → %d", (mult, n, expected) => {
    expect(expectedConfirmations(mult, n)).toBe(expected);
  });
});

describe("retransmitLimit = mult · ⌈log10(n + 1)⌉", () => {
  const cases: Array<[number, number, number]> = [
    [4, 0, 0],
    [4, 1, 4],
    [4, 9, 4],
    [4, 10, 8], // log10 11 > 1
    [4, 99, 8],
    [4, 100, 12],
    [4, 1000, 16],
    [2, 5, 2],
  ];
  it.each(cases)("mult %d, n %d → %d", (mult, n, expected) => {
    expect(retransmitLimit(mult, n)).toBe(expected);
  });
});

describe("pushPullInterval scales past 32 members", () => {
  const cases: Array<[number, number]> = [
    [1, 30000],
    [PUSH_PULL_SCALE_THRESHOLD, 30000],
    [33, 60000], // ⌈log2 33 − 5⌉ + 1 = 2
    [64, 60000],
    [65, 90000],
    [1000, 180000], // ⌈9.97 − 5⌉ + 1 = 6
  ];
  it.each(cases)("n %d → %d", (n, expected) => {
    expect(pushPullInterval(30000, n)).toBe(expected);
  });
});

describe("local health multiplier", () => {
  // [score, delta, max, expected]
  const cases: Array<[number, number, number, number]> = [
    [0, 1, 8, 1],
    [0, -1, 8, 0], // never below 0
    [6, 3, 8, 7], // never above max − 1
    [7, 1, 8, 7],
    [3, -2, 8, 1],
    [0, 3, 1, 0], // max 1 disables it
  ];
  it.each(cases)("score %d + %d (max %d) → %d", (score, delta, max, expected) => {
    expect(applyHealthDelta(score, delta, max)).toBe(expected);
  });

  const scales: Array<[number, number, number]> = [
    [1000, 0, 1000],
    [1000, 1, 2000],
    [500, 7, 4000],
  ];
  it.each(scales)("%d ms at score %d → %d ms", (base, score, expected) => {
    expect(scaleByHealth(base, score)).toBe(expected);
  });
});

describe("indirectProbeCount", () => {
  const cases: Array<[number, number, number]> = [
    [3, 10, 3],
    [3, 2, 2],
    [3, 0, 0],
    [3, -1, 0], // a lone pair: nobody to ask
    [0, 10, 0],
  ];
  it.each(cases)("k %d with %d candidates → %d", (k, candidates, expected) => {
    expect(indirectProbeCount(k, candidates)).toBe(expected);
  });
});

describe("shuffled round-robin probe order", () => {
  it("probes every eligible member once per round, in a new order each round", () => {
    const ids = ["a", "b", "c", "d", "e", "f"];
    const order = new ProbeOrder(seededRandom(7));
    const round1 = ids.map(() => order.next(ids, () => true));
    const round2 = ids.map(() => order.next(ids, () => true));
    expect([...round1].sort()).toEqual(ids);
    expect([...round2].sort()).toEqual(ids);
    expect(round1).not.toEqual(round2);
  });

  it("skips ineligible members and returns undefined when none is eligible", () => {
    const order = new ProbeOrder(seededRandom(1));
    const ids = ["a", "b", "c"];
    const seen = new Set([1, 2, 3, 4, 5, 6].map(() => order.next(ids, (id) => id !== "b")));
    expect(seen).toEqual(new Set(["a", "c"]));
    expect(order.next(ids, () => false)).toBeUndefined();
    expect(new ProbeOrder(seededRandom(1)).next([], () => true)).toBeUndefined();
  });

  it("fits a member learned mid-round into the current round", () => {
    const order = new ProbeOrder(seededRandom(3));
    const ids = ["a", "b", "c", "d"];
    expect(order.next(ids, () => true)).toBeDefined();
    order.add("e");
    const rest = [1, 2, 3, 4].map(() => order.next([...ids, "e"], () => true));
    expect(rest).toContain("e");
  });

  it("shuffle and pickRandom are deterministic under a seed and pick distinct items", () => {
    expect(shuffle([1, 2, 3, 4, 5], seededRandom(9))).toEqual(shuffle([1, 2, 3, 4, 5], seededRandom(9)));
    const picked = pickRandom([1, 2, 3, 4, 5, 6], 3, seededRandom(2), (x) => x % 2 === 0);
    expect(new Set(picked).size).toBe(3);
    expect(picked.every((x) => x % 2 === 0)).toBe(true);
    expect(pickRandom([1, 3], 2, seededRandom(2), (x) => x % 2 === 0)).toEqual([]);
  });
});
