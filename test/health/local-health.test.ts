import { describe, expect, it } from "vitest";
import { Limiter } from "../../src/health/limiter.ts";
import { LocalHealth, stretchTimeout } from "../../src/health/local-health.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";

const settings = { enabled: true, sampleInterval: 100, stallThreshold: 100, maxStretch: 8 };

describe("stretchTimeout", () => {
  // [timeout, lag, maxStretch, expected]
  const cases: Array<[number, number, number, number]> = [
    [1000, 0, 8, 1000],
    [1000, 50, 8, 1100],
    [1000, 3000, 8, 7000],
    [1000, 10_000, 8, 8000],
    [2000, -5, 8, 2000],
  ];
  it.each(cases)("timeout %d with lag %d (max ×%d) → %d", (t, lag, max, expected) => {
    expect(stretchTimeout(t, lag, max)).toBe(expected);
  });
});

describe("LocalHealth", () => {
  it("sees a stall of the event loop, remembers it, and stretches timeouts", async () => {
    const clock = new FakeClock();
    const lh = new LocalHealth(clock, settings);
    lh.start();
    await clock.advance(1000);
    expect(lh.lag()).toBe(0);
    expect(lh.stretch(1000)).toBe(1000);
    clock.stall(3000); // the loop is blocked for 3 s
    await clock.advance(100);
    expect(lh.lag()).toBe(2900); // the tick due at 1100 ran at 4000
    expect(lh.overlapsStall(1500, 1600)).toBe(true);
    expect(lh.overlapsStall(500, 900)).toBe(false);
    expect(lh.stretch(1000)).toBe(6800); // 1000 + 2·2900
    expect(lh.stretch(200)).toBe(1600); // capped at 8×
    // the lag is forgotten after 10 s of normal running
    await clock.advance(11_000);
    expect(lh.lag()).toBe(0);
    expect(lh.overlapsStall(1500, 1600)).toBe(true);
    lh.stop();
  });

  it("measures how long an interval was stalled", async () => {
    const clock = new FakeClock();
    const lh = new LocalHealth(clock, settings);
    lh.start();
    await clock.advance(1000);
    clock.stall(2000);
    await clock.advance(100); // the tick due at 1100 ran at 3000: a stall [1100, 3000]
    expect(lh.stalledDuring(0, 5000)).toBe(1900);
    expect(lh.stalledDuring(2000, 2500)).toBe(500);
    expect(lh.stalledDuring(0, 1000)).toBe(0);
    // a deadline timer that ran late adds to the same stall, not twice
    lh.observe(1500, 3000);
    expect(lh.stalledDuring(0, 5000)).toBe(1900);
    lh.stop();
    const off = new LocalHealth(new FakeClock(), { ...settings, enabled: false });
    off.observe(0, 5000);
    expect(off.stalledDuring(0, 5000)).toBe(0);
    expect(off.overlapsStall(0, 5000)).toBe(false);
    expect(off.stretch(1000)).toBe(1000);
  });
});

describe("Limiter", () => {
  it("bounds concurrency and serves waiters in order", async () => {
    const l = new Limiter(2);
    const a = await l.acquire();
    const b = await l.acquire();
    const order: string[] = [];
    const c = l.acquire().then((r) => {
      order.push("c");
      return r;
    });
    const d = l.acquire().then((r) => {
      order.push("d");
      return r;
    });
    expect(l.inFlight).toBe(2);
    expect(l.queued).toBe(2);
    a();
    a(); // double release is harmless
    const rc = await c;
    expect(l.inFlight).toBe(2);
    b();
    const rd = await d;
    expect(order).toEqual(["c", "d"]);
    rc();
    rd();
    expect(l.inFlight).toBe(0);
    l.resize(1);
    const e = await l.acquire();
    let got = false;
    const f = l.acquire().then(() => {
      got = true;
    });
    await Promise.resolve();
    expect(got).toBe(false);
    e();
    await f;
    expect(got).toBe(true);
  });
});
