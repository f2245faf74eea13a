import { describe, expect, it } from "vitest";
import type { TargetState, Transition } from "../../src/health/types.ts";
import { FlapDamper, type FlapDecision, type StableNotice } from "../../src/hooks/flap.ts";
import type { FlapOptions } from "../../src/hooks/schema.ts";

/**
 * Flap damping as a table: each case is a list of steps on monotonic time — a change of a
 * target (counted or not) with the decision expected, or a `settle` with the stable notices
 * expected — on small numbers (window 100, threshold 3, quiet 50).
 */

type Step =
  | { at: number; target?: string; to: TargetState; counted?: boolean; expect: FlapDecision }
  | {
      settle: number;
      expect: Array<Pick<StableNotice, "target" | "from" | "to" | "changes" | "suppressed">>;
    };

const opts: FlapOptions = { enabled: true, window: 100, threshold: 3, quiet: 50 };

const cases: Array<{ name: string; options?: Partial<FlapOptions>; steps: Step[] }> = [
  {
    name: "changes spread wider than the window are all delivered",
    steps: [
      { at: 0, to: "down", expect: "deliver" },
      { at: 60, to: "healthy", expect: "deliver" },
      { at: 120, to: "down", expect: "deliver" }, // the change at 0 has left the window
      { at: 180, to: "healthy", expect: "deliver" },
      { at: 240, to: "down", expect: "deliver" },
      { settle: 1000, expect: [] },
    ],
  },
  {
    name: "the change reaching the threshold becomes 'flapping'; later ones are suppressed",
    steps: [
      { at: 0, to: "down", expect: "deliver" },
      { at: 10, to: "healthy", expect: "deliver" },
      { at: 20, to: "down", expect: "flapping" },
      { at: 30, to: "healthy", expect: "suppress" },
      { at: 40, to: "down", expect: "suppress" },
      { at: 200, to: "healthy", expect: "suppress" }, // far outside the window: still flapping
      { settle: 249, expect: [] },
      { settle: 250, expect: [{ target: "a", from: "down", to: "healthy", changes: 4, suppressed: 3 }] },
      { settle: 400, expect: [] }, // once
    ],
  },
  {
    name: "a change exactly `window` old no longer counts",
    steps: [
      { at: 0, to: "down", expect: "deliver" },
      { at: 50, to: "healthy", expect: "deliver" },
      { at: 100, to: "down", expect: "deliver" },
      { at: 101, to: "healthy", expect: "flapping" },
    ],
  },
  {
    name: "uncounted changes never count towards flapping, but do delay 'stable'",
    steps: [
      { at: 0, to: "down", expect: "deliver" },
      { at: 5, to: "suspect", counted: false, expect: "ignore" },
      { at: 10, to: "down", expect: "deliver" },
      { at: 15, to: "recovering", counted: false, expect: "ignore" },
      { at: 20, to: "healthy", expect: "flapping" },
      { at: 60, to: "suspect", counted: false, expect: "ignore" },
      { settle: 100, expect: [] }, // quiet since 60 only
      { settle: 110, expect: [{ target: "a", from: "healthy", to: "suspect", changes: 2, suppressed: 0 }] },
    ],
  },
  {
    name: "after 'stable' the count starts again from zero",
    steps: [
      { at: 0, to: "down", expect: "deliver" },
      { at: 10, to: "healthy", expect: "deliver" },
      { at: 20, to: "down", expect: "flapping" },
      { at: 30, to: "healthy", expect: "suppress" },
      { settle: 80, expect: [{ target: "a", from: "down", to: "healthy", changes: 2, suppressed: 1 }] },
      { at: 85, to: "down", expect: "deliver" },
      { at: 90, to: "healthy", expect: "deliver" },
      { at: 95, to: "down", expect: "flapping" },
    ],
  },
  {
    name: "targets are counted apart",
    steps: [
      { at: 0, target: "a", to: "down", expect: "deliver" },
      { at: 5, target: "b", to: "down", expect: "deliver" },
      { at: 10, target: "a", to: "healthy", expect: "deliver" },
      { at: 15, target: "b", to: "healthy", expect: "deliver" },
      { at: 20, target: "a", to: "down", expect: "flapping" },
      { at: 25, target: "c", to: "down", expect: "deliver" },
      { at: 30, target: "a", to: "healthy", expect: "suppress" },
      { at: 35, target: "b", to: "down", expect: "flapping" },
      { settle: 80, expect: [{ target: "a", from: "down", to: "healthy", changes: 2, suppressed: 1 }] },
      { settle: 85, expect: [{ target: "b", from: "down", to: "down", changes: 1, suppressed: 0 }] },
    ],
  },
  {
    name: "disabled: every counted change is delivered",
    options: { enabled: false },
    steps: [
      { at: 0, to: "down", expect: "deliver" },
      { at: 1, to: "healthy", expect: "deliver" },
      { at: 2, to: "down", expect: "deliver" },
      { at: 3, to: "healthy", expect: "deliver" },
      { at: 4, to: "suspect", counted: false, expect: "ignore" },
      { settle: 1000, expect: [] },
    ],
  },
  {
    name: "threshold 2: the second change within the window is already flapping",
    options: { threshold: 2 },
    steps: [
      { at: 0, to: "down", expect: "deliver" },
      { at: 99, to: "healthy", expect: "flapping" },
    ],
  },
];

describe("FlapDamper", () => {
  it.each(cases)("$name", ({ options, steps }) => {
    const damper = new FlapDamper({ ...opts, ...options });
    const last = new Map<string, TargetState>();
    steps.forEach((step, i) => {
      if ("settle" in step) {
        const got = damper
          .settle(step.settle)
          .map(({ target, from, to, changes, suppressed }) => ({ target, from, to, changes, suppressed }));
        expect(got, `step ${i}: settle at ${step.settle}`).toEqual(step.expect);
        return;
      }
      const target = step.target ?? "a";
      const t: Transition = {
        target,
        from: last.get(target) ?? "healthy",
        to: step.to,
        at: 1_700_000_000_000 + step.at,
        reason: `to ${step.to}`,
        evidence: {},
      };
      last.set(target, step.to);
      expect(
        damper.observe(t, step.counted ?? true, step.at),
        `step ${i}: ${target} → ${step.to} at ${step.at}`,
      ).toBe(step.expect);
    });
  });

  it("says when to settle next: the earliest quiet deadline of a flapping target", () => {
    const d = new FlapDamper(opts);
    const t = (target: string, to: TargetState): Transition => ({
      target,
      from: "healthy",
      to,
      at: 0,
      reason: "",
      evidence: {},
    });
    expect(d.nextDeadline()).toBeUndefined();
    for (const at of [0, 1, 2]) d.observe(t("a", at % 2 ? "healthy" : "down"), true, at);
    expect(d.isFlapping("a")).toBe(true);
    expect(d.nextDeadline()).toBe(52);
    d.observe(t("a", "healthy"), false, 30);
    expect(d.nextDeadline()).toBe(80);
    expect(d.flapping()).toEqual(["a"]);
  });

  it("forgets targets whose changes have left the window (bounded memory)", () => {
    const d = new FlapDamper(opts);
    for (let i = 0; i < 1000; i++) {
      d.observe(
        { target: `t${i}`, from: "healthy", to: "down", at: 0, reason: "", evidence: {} },
        true,
        i * 10,
      );
    }
    expect(d.size()).toBeLessThanOrEqual(25);
  });
});
