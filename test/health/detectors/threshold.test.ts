import { describe, expect, it } from "vitest";
import { ThresholdDetector, type Verdict } from "../../../src/health/detectors/threshold.ts";

type Step = "ok" | "fail" | "held" | "release";

function run(fall: number, rise: number, steps: Step[]): Verdict[] {
  const d = new ThresholdDetector({ fall, rise });
  return steps.map((s) => {
    if (s === "ok") return d.success();
    if (s === "fail") return d.failure(true);
    if (s === "held") return d.failure(false);
    return d.evaluate(true);
  });
}

describe("ThresholdDetector", () => {
  // [fall, rise, steps, verdicts]
  const cases: Array<[number, number, Step[], Verdict[]]> = [
    [3, 2, ["ok"], ["up"]],
    [3, 2, ["fail"], ["suspect"]],
    [3, 2, ["ok", "fail", "fail", "fail"], ["up", "suspect", "suspect", "down"]],
    [3, 2, ["ok", "fail", "ok", "fail", "fail"], ["up", "suspect", "up", "suspect", "suspect"]],
    [1, 1, ["ok", "fail", "ok"], ["up", "down", "up"]], // the seed: no suspicion
    [3, 2, ["fail", "fail", "fail", "ok", "ok"], ["suspect", "suspect", "down", "recovering", "up"]],
    [3, 2, ["fail", "fail", "fail", "ok", "fail"], ["suspect", "suspect", "down", "recovering", "down"]],
    [3, 1, ["fail", "fail", "fail", "ok"], ["suspect", "suspect", "down", "up"]],
    [
      3,
      3,
      ["fail", "fail", "fail", "ok", "ok", "ok"],
      ["suspect", "suspect", "down", "recovering", "recovering", "up"],
    ],
    [3, 2, ["fail", "fail", "fail", "fail"], ["suspect", "suspect", "down", "down"]],
    // conviction held back while evidence is outstanding, then released
    [2, 2, ["held", "held", "held"], ["suspect", "suspect", "suspect"]],
    [2, 2, ["held", "held", "release"], ["suspect", "suspect", "down"]],
    [3, 2, ["held", "release"], ["suspect", "suspect"]],
    [2, 2, ["held", "ok", "release"], ["suspect", "up", "up"]],
  ];
  it.each(cases)("fall %d rise %d: %j → %j", (fall, rise, steps, verdicts) => {
    expect(run(fall, rise, steps)).toEqual(verdicts);
  });

  it("counts runs", () => {
    const d = new ThresholdDetector({ fall: 3, rise: 2 });
    d.failure();
    d.failure();
    expect(d.failures).toBe(2);
    d.success();
    expect(d.successes).toBe(1);
  });
});
