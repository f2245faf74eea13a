import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/resolve.ts";
import type { ProbeRegistry } from "../../src/health/probes/registry.ts";
import type { Logger } from "../../src/util/logger.ts";
import { type Harness, harness, pass, refuse, scripted } from "../support/scripted-probe.ts";

/** Regression tests, one per bug found in review of the first version of the engine. */
function registryOf(h: Harness): ProbeRegistry {
  return (h.engine as unknown as { registry: ProbeRegistry }).registry;
}

function recordingLogger(): Logger & { lines: Array<{ level: string; obj: object; msg?: string }> } {
  const lines: Array<{ level: string; obj: object; msg?: string }> = [];
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj, msg });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

describe("engine regressions", () => {
  it("a listener that throws is logged and never stops a check", async () => {
    const logger = recordingLogger();
    const h = harness({ targets: [scripted("a")] }, 1, logger);
    h.engine.on("result", () => {
      throw new Error("listener bug");
    });
    h.engine.start();
    await h.clock.advance(10_000);
    expect(h.probes.get("a")!.attempts).toBeGreaterThanOrEqual(4);
    expect(h.states("a")).toEqual(["healthy"]);
    expect(
      logger.lines.some(
        (l) => l.level === "error" && (l.obj as { event?: string }).event === "listener-error",
      ),
    ).toBe(true);
    await h.engine.stop();
  });

  it("a refusal convicts without waiting for an outstanding patient attempt", async () => {
    const h = harness({ targets: [scripted("a")] });
    const p = h.probes.get("a")!;
    h.engine.start();
    await h.clock.advance(4000);
    let first = true;
    let from = 0;
    p.behaviour = (_n, now) => {
      if (first) {
        first = false;
        from = now;
        return "hang"; // becomes the patient attempt
      }
      return refuse();
    };
    await h.clock.advance(5000);
    expect(h.states("a")).toEqual(["healthy", "suspect", "down"]);
    const downAt = h.timeline("a")[2]![0];
    expect(downAt - from).toBeLessThan(4000); // not the patient attempt's 8 s
    expect(h.engine.target("a")!.kind).toBe("refused");
    expect(p.inFlight).toBe(0); // the patient attempt was dropped
    await h.engine.stop();
  });

  it("monitor-side failures back off instead of spinning, and are logged, not counted", async () => {
    const logger = recordingLogger();
    const h = harness({ targets: [scripted("a")] }, 1, logger);
    const p = h.probes.get("a")!;
    h.engine.start();
    await h.clock.advance(3000);
    const before = p.attempts;
    p.behaviour = () => ({
      after: 1,
      outcome: {
        status: "fail",
        kind: "unreachable",
        errno: "EMFILE",
        local: true,
        message: "too many open files",
      },
    });
    await h.clock.advance(10_000);
    expect(p.attempts - before).toBeLessThanOrEqual(15); // 50 ms doubling up to the 2 s interval
    expect(h.states("a")).toEqual(["healthy"]);
    const warned = logger.lines.filter((l) => (l.obj as { event?: string }).event === "local-failure");
    expect(warned.length).toBeGreaterThanOrEqual(2); // at 1 and 10 in a row
    await h.engine.stop();
  });

  it("a reload keeps an operator's disable", async () => {
    const h = harness({ targets: [scripted("a")] });
    h.engine.start();
    await h.clock.advance(3000);
    h.engine.disable("a", "maintenance");
    h.engine.apply(resolveConfig({ targets: [{ ...scripted("a"), interval: "1s" }] }, registryOf(h)));
    await h.clock.advance(5000);
    expect(h.states("a")).toEqual(["healthy", "disabled"]);
    await h.engine.stop();
  });

  it("turning local health on by reload starts the lag sampler", async () => {
    const h = harness({ monitor: { localHealth: { enabled: false } }, targets: [scripted("a")] });
    h.engine.start();
    await h.clock.advance(1000);
    h.engine.apply(resolveConfig({ targets: [scripted("a")] }, registryOf(h)));
    await h.clock.advance(1000);
    h.clock.stall(3000);
    await h.clock.advance(200);
    expect(h.engine.load().lag).toBeGreaterThanOrEqual(2900);
    await h.engine.stop();
  });

  it("changing the scheduling on reload keeps every target's state", async () => {
    const h = harness({ targets: [scripted("up"), scripted("dead")] });
    h.probes.get("dead")!.behaviour = () => refuse();
    h.engine.start();
    await h.clock.advance(10_000);
    h.engine.apply(
      resolveConfig(
        { monitor: { scheduling: "sequential" }, targets: [scripted("up"), scripted("dead")] },
        registryOf(h),
      ),
    );
    const attempts = h.probes.get("up")!.attempts;
    await h.clock.advance(10_000);
    expect(h.states("dead")).toEqual(["suspect", "down"]);
    expect(h.states("up")).toEqual(["healthy"]);
    expect(h.probes.get("up")!.attempts).toBeGreaterThan(attempts); // the sequential loop runs it
    await h.engine.stop();
  });

  it("stop() then start() checks again, keeping history", async () => {
    const h = harness({ targets: [scripted("a")] });
    h.engine.start();
    await h.clock.advance(3000);
    await h.engine.stop();
    h.engine.start();
    const probe = () => h.probes.get("a")!; // a fresh probe after the restart
    await h.clock.advance(5000);
    expect(probe().attempts).toBeGreaterThanOrEqual(2);
    expect(h.engine.history("a")!.transitions.map((t) => t.to)).toEqual(["healthy"]);
    await h.engine.stop();
  });

  it("a lower timeout.max on reload applies to the next attempt", async () => {
    const h = harness({ targets: [scripted("a")] });
    h.engine.start();
    await h.clock.advance(3000);
    expect(h.engine.target("a")!.checks[0]!.timeout).toBe(1000);
    h.engine.apply(
      resolveConfig(
        { defaults: { timeout: { min: "100ms", max: "500ms" } }, targets: [scripted("a")] },
        registryOf(h),
      ),
    );
    expect(h.engine.target("a")!.checks[0]!.timeout).toBeLessThanOrEqual(500);
    await h.engine.stop();
  });

  it("events() streams end when the engine stops", async () => {
    const h = harness({ targets: [scripted("a")] });
    const stream = h.engine.events(["state"]);
    h.engine.start();
    await h.clock.advance(3000);
    await h.engine.stop();
    const seen: string[] = [];
    for await (const e of stream) if (e.type === "state") seen.push(e.transition.to);
    expect(seen).toEqual(["healthy"]);
  });

  it("pass() helpers keep working after reconfigure", async () => {
    const h = harness({ targets: [scripted("a")] });
    h.probes.get("a")!.behaviour = () => pass(5);
    h.engine.start();
    await h.clock.advance(3000);
    expect(h.states("a")).toEqual(["healthy"]);
    await h.engine.stop();
  });
});
