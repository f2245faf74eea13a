import { describe, expect, it } from "vitest";
import { harness, pass, refuse, scripted, warn } from "../support/scripted-probe.ts";

/**
 * The engine on fake time with scripted targets: every state transition, patience,
 * stalls, backoff and the in-flight limit, without a socket or a sleep.
 */
describe("health engine: state transitions (lan profile)", () => {
  it("unknown → healthy on the first success, spread over the interval", async () => {
    const h = harness({ targets: [scripted("a"), scripted("b"), scripted("c")] });
    h.engine.start();
    await h.clock.advance(2100);
    for (const id of ["a", "b", "c"]) expect(h.states(id)).toEqual(["healthy"]);
    const firsts = ["a", "b", "c"].map((id) => h.probes.get(id)!.starts[0]!);
    expect(new Set(firsts.map((t) => Math.round(t))).size).toBe(3); // random phases differ
    for (const t of firsts) expect(t).toBeLessThan(2000);
    await h.engine.stop();
  });

  it("a refusing target goes suspect on the first failure and down after `fall`, at the fast interval", async () => {
    const h = harness({ targets: [scripted("a")] });
    const p = () => h.probes.get("a")!;
    h.engine.start();
    await h.clock.advance(3000);
    p().behaviour = () => refuse();
    const failedAt = h.clock.now();
    await h.clock.advance(5000);
    expect(h.states("a")).toEqual(["healthy", "suspect", "down"]);
    const [, suspectAt, downAt] = h.timeline("a").map(([t]) => t);
    expect(suspectAt! - failedAt).toBeLessThanOrEqual(2300); // next check within interval + jitter
    expect(downAt! - suspectAt!).toBeGreaterThanOrEqual(2 * 450); // two more at fastInterval ±10 %
    expect(downAt! - suspectAt!).toBeLessThanOrEqual(2 * 550 + 5);
    const transition = h.engine.history("a")!.transitions.at(-1)!;
    expect(transition.reason).toBe("scripted: 3 consecutive failures, last refused (ECONNREFUSED)");
    expect(transition.kind).toBe("refused");
    expect(transition.errno).toBe("ECONNREFUSED");
    expect(h.engine.target("a")!.kind).toBe("refused");
    await h.engine.stop();
  });

  it("down → recovering → healthy after `rise` successes, backing off while down", async () => {
    const h = harness({ targets: [scripted("a")] });
    const p = h.probes.get("a")!;
    p.behaviour = () => refuse();
    h.engine.start();
    await h.clock.advance(120_000);
    expect(h.states("a")).toEqual(["suspect", "down"]);
    // gaps between checks of a down target grow, up to the 30 s cap
    const downAt = h.timeline("a")[1]![0];
    const starts = p.starts.filter((t) => t > downAt);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    expect(gaps.length).toBeGreaterThanOrEqual(4);
    expect(gaps[gaps.length - 1]!).toBeGreaterThan(gaps[0]! * 2);
    for (const g of gaps) expect(g).toBeLessThanOrEqual(30_000 + 1);
    p.behaviour = () => pass();
    await h.clock.advance(32_000);
    expect(h.states("a")).toEqual(["suspect", "down", "recovering", "healthy"]);
    const [rec, healthy] = h
      .timeline("a")
      .slice(2)
      .map(([t]) => t);
    expect(healthy! - rec!).toBeLessThanOrEqual(600); // recovering is checked at the fast interval
    await h.engine.stop();
  });

  it("one lost answer is a suspicion that the next success clears: suspect → healthy", async () => {
    const h = harness({ targets: [scripted("a")] });
    const p = h.probes.get("a")!;
    h.engine.start();
    await h.clock.advance(3000);
    const once = p.attempts;
    p.behaviour = (n) => (n === once ? refuse() : pass());
    await h.clock.advance(5000);
    expect(h.states("a")).toEqual(["healthy", "suspect", "healthy"]);
    await h.engine.stop();
  });

  it("a failure while recovering sends the target back down: recovering → down", async () => {
    const h = harness({ defaults: { rise: 3 }, targets: [scripted("a")] });
    const p = h.probes.get("a")!;
    p.behaviour = () => refuse();
    h.engine.start();
    await h.clock.advance(5000);
    let n = 0;
    p.behaviour = () => (n++ === 1 ? refuse() : pass());
    await h.clock.advance(60_000);
    expect(h.states("a")).toEqual(["suspect", "down", "recovering", "down", "recovering", "healthy"]);
    await h.engine.stop();
  });

  it("a black-holed target is suspect after the minimum timeout and down only after timeout.max", async () => {
    const h = harness({ targets: [scripted("a")] });
    const p = h.probes.get("a")!;
    h.engine.start();
    await h.clock.advance(4000);
    let hangFrom = 0;
    p.behaviour = (_n, now) => {
      if (!hangFrom) hangFrom = now;
      return "hang";
    };
    await h.clock.advance(20_000);
    expect(h.states("a")).toEqual(["healthy", "suspect", "down"]);
    const [, suspectAt, downAt] = h.timeline("a").map(([t]) => t);
    expect(suspectAt! - hangFrom).toBeGreaterThanOrEqual(999); // lan timeout.min
    expect(suspectAt! - hangFrom).toBeLessThan(1100);
    expect(downAt! - hangFrom).toBeGreaterThanOrEqual(7999); // the patient attempt's timeout.max
    expect(downAt! - hangFrom).toBeLessThan(8200);
    const t = h.engine.target("a")!;
    expect(t.kind).toBe("timeout");
    expect(t.reason).toContain("timeout");
    // never more than one patient and one regular attempt at a time
    expect(p.maxInFlight).toBeLessThanOrEqual(2);
    await h.engine.stop();
  });

  it("the seed's slow server (6 s to accept) ends degraded, never down", async () => {
    const h = harness({ targets: [scripted("a")] });
    const p = h.probes.get("a")!;
    h.engine.start();
    await h.clock.advance(4000);
    p.behaviour = () => pass(6000);
    await h.clock.advance(60_000);
    const states = h.states("a");
    expect(states).not.toContain("down");
    expect(states[states.length - 1]).toBe("degraded");
    expect(states).toEqual(["healthy", "suspect", "degraded"]);
    expect(h.engine.target("a")!.reason).toMatch(/slow: smoothed latency 6\.0 s over 1\.0 s/);
    const late = h.events.filter((e) => e.type === "result" && e.result.late);
    expect(late.length).toBeGreaterThanOrEqual(1);
    await h.engine.stop();
  });

  it("the same slow server under classic goes down at the 2 s timeout", async () => {
    const h = harness({ profile: "classic", targets: [scripted("a")] });
    const p = h.probes.get("a")!;
    h.engine.start();
    await h.clock.advance(100);
    expect(h.states("a")).toEqual(["healthy"]);
    p.behaviour = () => pass(6000);
    await h.clock.advance(3000);
    const from = p.starts[p.starts.length - 1]!;
    await h.clock.advance(3000);
    expect(h.states("a")).toEqual(["healthy", "down"]);
    expect(h.timeline("a")[1]![0] - from).toBeCloseTo(2000, 0);
    // the probe's own account of the timeout is kept; the kind stays timeout
    const last = h.engine.target("a")!.checks[0]!.last!;
    expect(last).toMatchObject({ status: "fail", kind: "timeout", message: "aborted", timeout: 2000 });
    await h.engine.stop();
  });

  it("a latency threshold with hysteresis: slow → degraded, fast again → healthy", async () => {
    const h = harness({ defaults: { slowThreshold: "100ms" }, targets: [scripted("a")] });
    const p = h.probes.get("a")!;
    p.behaviour = () => pass(5);
    h.engine.start();
    await h.clock.advance(10_000);
    p.behaviour = () => pass(400);
    await h.clock.advance(40_000);
    expect(h.states("a")).toEqual(["healthy", "degraded"]);
    p.behaviour = () => pass(5);
    await h.clock.advance(60_000);
    expect(h.states("a")).toEqual(["healthy", "degraded", "healthy"]);
    await h.engine.stop();
  });

  it("a warning makes the target degraded; a non-critical failure too", async () => {
    const h = harness({
      targets: [
        scripted("w"),
        {
          id: "n",
          checks: [
            { type: "scripted", key: "n1" },
            { type: "scripted", key: "n2", critical: false },
          ],
        },
      ],
    });
    h.probes.get("w")!.behaviour = () => warn();
    h.probes.get("n2")!.behaviour = () => refuse();
    h.engine.start();
    await h.clock.advance(10_000);
    expect(h.states("w")).toEqual(["degraded"]);
    expect(h.engine.target("w")!.reason).toContain("warning: busy");
    expect(h.states("n").at(-1)).toBe("degraded");
    expect(h.states("n")).not.toContain("down");
    expect(h.engine.target("n")!.reason).toContain("non-critical scripted-2");
    await h.engine.stop();
  });

  it("a probe that throws is a failed result; the engine and other targets carry on", async () => {
    const h = harness({ targets: [scripted("bad"), scripted("good")] });
    h.probes.get("bad")!.behaviour = () => "throw";
    h.engine.start();
    await h.clock.advance(10_000);
    expect(h.states("bad")).toEqual(["suspect", "down"]);
    expect(h.engine.target("bad")!.reason).toContain("probe error: probe bug");
    expect(h.states("good")).toEqual(["healthy"]);
    expect(h.probes.get("good")!.attempts).toBeGreaterThanOrEqual(4);
    await h.engine.stop();
  });
});

describe("health engine: the monitor's own stalls", () => {
  it("a stall while a check is pending is not blamed on the target (lan)", async () => {
    const h = harness({ targets: [scripted("a")] });
    const p = h.probes.get("a")!;
    h.engine.start();
    await h.clock.advance(4000);
    // The next attempt will not answer before the stall ends...
    p.behaviour = () => ({ after: 3500, outcome: { status: "pass", message: "ok" } });
    const n = p.attempts;
    while (p.attempts === n) await h.clock.advance(10);
    await h.clock.advance(10);
    h.clock.stall(3000); // ...because the loop is blocked for 3 s, past the 1 s timeout
    p.behaviour = () => pass();
    await h.clock.advance(10_000);
    expect(h.states("a")).toEqual(["healthy"]);
    const failures = h.events.filter((e) => e.type === "result" && e.result.status === "fail");
    expect(failures).toEqual([]);
    await h.engine.stop();
  });

  it("the time a stall took is added back to a deadline, not charged to the target", async () => {
    const h = harness({ targets: [scripted("a")] });
    const p = h.probes.get("a")!;
    h.engine.start();
    await h.clock.advance(4000);
    let hangFrom = 0;
    p.behaviour = (_n, now) => {
      if (!hangFrom) hangFrom = now;
      return "hang";
    };
    while (!hangFrom) await h.clock.advance(10);
    await h.clock.advance(100);
    h.clock.stall(2000);
    await h.clock.advance(10_000);
    const suspectAt = h.timeline("a").find(([, s]) => s === "suspect")![0];
    // 1 s timeout + ~2 s of stall given back (the sampler sees the stall to within 100 ms)
    expect(suspectAt - hangFrom).toBeGreaterThanOrEqual(2900);
    expect(suspectAt - hangFrom).toBeLessThan(3300);
    await h.engine.stop();
  });

  it("under classic the same stall is a failure and the target goes down", async () => {
    const h = harness({ profile: "classic", targets: [scripted("a")] });
    const p = h.probes.get("a")!;
    h.engine.start();
    await h.clock.advance(100);
    p.behaviour = () => ({ after: 3500, outcome: { status: "pass", message: "ok" } });
    await h.clock.advance(3000); // the next sequential round starts
    h.clock.stall(3000);
    p.behaviour = () => pass();
    await h.clock.advance(10_000);
    expect(h.states("a")).toContain("down");
    await h.engine.stop();
  });

  it("timeouts stretch while the loop lags", async () => {
    const h = harness({ targets: [scripted("a")] });
    h.engine.start();
    await h.clock.advance(3000);
    expect(h.engine.target("a")!.checks[0]!.timeout).toBe(1000);
    h.clock.stall(500);
    await h.clock.advance(200);
    expect(h.engine.local.lag()).toBeGreaterThanOrEqual(400);
    expect(h.engine.local.stretch(1000)).toBeGreaterThanOrEqual(1800);
    await h.engine.stop();
  });
});

describe("health engine: capacity and configuration", () => {
  it("never has more probes in flight than maxInFlight", async () => {
    const targets = Array.from({ length: 20 }, (_, i) => scripted(`t${i}`));
    const h = harness({ monitor: { maxInFlight: 3 }, targets });
    for (const p of h.probes.values()) p.behaviour = () => pass(800);
    let peak = 0;
    h.engine.on("result", () => {
      peak = Math.max(peak, h.engine.load().inFlight);
    });
    h.engine.start();
    for (let i = 0; i < 100; i++) {
      await h.clock.advance(100);
      const total = [...h.probes.values()].reduce((n, p) => n + p.inFlight, 0);
      expect(total).toBeLessThanOrEqual(3);
      peak = Math.max(peak, total);
    }
    expect(peak).toBe(3);
    expect(h.states("t19")).toEqual(["healthy"]);
    await h.engine.stop();
  });

  it("classic checks targets one after another, then sleeps 3 s", async () => {
    const h = harness({ profile: "classic", targets: [scripted("a"), scripted("b"), scripted("c")] });
    h.probes.get("a")!.behaviour = () => "hang";
    h.engine.start();
    await h.clock.advance(10_000);
    const a = h.probes.get("a")!.starts;
    const b = h.probes.get("b")!.starts;
    expect(a[0]).toBe(0);
    expect(b[0]).toBe(2000); // after a's 2 s timeout
    expect(a[1]).toBeCloseTo(2000 + 1 + 1 + 3000, -1); // after b and c, then the 3 s sleep
    expect(h.states("a")).toEqual(["down"]);
    await h.engine.stop();
  });

  it("reload adds and removes targets and keeps history and state of the rest", async () => {
    const h = harness({ targets: [scripted("a"), scripted("b")] });
    h.probes.get("b")!.behaviour = () => refuse();
    h.engine.start();
    await h.clock.advance(10_000);
    expect(h.states("b")).toEqual(["suspect", "down"]);
    const before = h.engine.history("a")!.results.length;
    const { resolveConfig } = await import("../../src/config/resolve.ts");
    const registry = (
      h.engine as unknown as { registry: import("../../src/health/probes/registry.ts").ProbeRegistry }
    ).registry;
    const change = h.engine.apply(
      resolveConfig({ defaults: { interval: "1s" }, targets: [scripted("b"), scripted("c")] }, registry),
    );
    expect(change).toEqual({ added: ["c"], removed: ["a"], changed: ["b"] });
    expect(h.engine.ids()).toEqual(["b", "c"]);
    expect(h.engine.target("b")!.state).toBe("down");
    expect(h.engine.history("b")!.transitions.map((t) => t.to)).toEqual(["suspect", "down"]);
    expect(h.engine.target("b")!.checks[0]!.interval).toBe(1000);
    await h.clock.advance(5000);
    expect(h.states("c")).toEqual(["healthy"]);
    expect(before).toBeGreaterThan(0);
    await h.engine.stop();
  });

  it("disable, enable and drain are states with reasons", async () => {
    const h = harness({ targets: [scripted("a"), { ...scripted("d"), disabled: true }] });
    h.engine.start();
    await h.clock.advance(5000);
    expect(h.engine.target("d")!.state).toBe("disabled");
    expect(h.engine.history("d")!.transitions.map((t) => t.to)).toEqual(["disabled"]);
    expect(h.probes.get("d")!.attempts).toBe(0);
    h.engine.disable("a", "maintenance");
    h.engine.drain("a", "GOAWAY");
    expect(h.engine.target("a")!.state).toBe("disabled");
    expect(h.engine.target("a")!.reason).toBe("disabled by operator: maintenance");
    h.engine.enable("a");
    expect(h.engine.target("a")!.state).toBe("draining");
    h.engine.undrain("a");
    await h.clock.advance(5000);
    expect(h.engine.target("a")!.state).toBe("healthy");
    expect(h.states("a")).toEqual(["healthy", "disabled", "draining", "unknown", "healthy"]);
    await h.engine.stop();
  });

  it("events() is an async iterator that unsubscribes on break", async () => {
    const h = harness({ targets: [scripted("a")] });
    const stream = h.engine.events(["state"]);
    h.engine.start();
    await h.clock.advance(3000);
    const seen: string[] = [];
    for await (const e of stream) {
      if (e.type === "state") seen.push(e.transition.to);
      break;
    }
    expect(seen).toEqual(["healthy"]);
    expect(h.engine.listenerCount("state")).toBe(1); // only the harness's own listener remains
    await h.engine.stop();
  });
});
