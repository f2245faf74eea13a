import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../../src/config/resolve.ts";
import { ConfigError } from "../../../src/errors.ts";
import { defaultRegistry } from "../../../src/health/probes/index.ts";
import { TtlProbe, ttlProbe, ttlSchema } from "../../../src/health/probes/ttl.ts";
import type { ProbeOutcome } from "../../../src/health/types.ts";
import { type Clock, systemClock } from "../../../src/util/clock.ts";
import { FakeClock } from "../../../src/util/fake-clock.ts";

function attempt(p: TtlProbe, clock: Clock = systemClock) {
  const controller = new AbortController();
  let outcome: ProbeOutcome | undefined;
  const done = p.run({ signal: controller.signal, deadline: 1000, clock }).then((o) => {
    outcome = o;
    return o;
  });
  return { done, abort: () => controller.abort(), settled: () => outcome };
}

/** Lets promise callbacks run. */
const tick = () => new Promise((r) => setImmediate(r));

describe("ttl probe", () => {
  const spec = ttlSchema.parse({ ttl: "300ms" });

  it("an attempt waits for a report and takes its status and message", async () => {
    const p = new TtlProbe(spec, systemClock);
    const a = attempt(p);
    await tick();
    expect(a.settled()).toBeUndefined();
    p.report("pass");
    expect(await a.done).toEqual({ status: "pass", message: "reported pass" });
    const b = attempt(p);
    p.report("warn", "queue depth 900");
    expect(await b.done).toMatchObject({ status: "warn", message: "queue depth 900" });
    const c = attempt(p);
    p.report("fail", "db unreachable");
    expect(await c.done).toMatchObject({ status: "fail", message: "db unreachable" });
    expect((await c.done).kind).toBeDefined();
  });

  it("without a report, the abort at the deadline is a timeout", async () => {
    const p = new TtlProbe(spec, systemClock);
    const a = attempt(p);
    a.abort();
    expect(await a.done).toEqual({ status: "fail", kind: "timeout", message: "no report within 300 ms" });
  });

  it("a report between attempts is kept (the latest one) and answers the next at once", async () => {
    const p = new TtlProbe(spec, systemClock);
    const a = attempt(p);
    a.abort();
    await a.done;
    p.report("fail", "first");
    p.report("pass", "second");
    expect(await attempt(p).done).toMatchObject({ status: "pass", message: "second" });
    // It was used up: the attempt after waits again.
    const c = attempt(p);
    await tick();
    expect(c.settled()).toBeUndefined();
    c.abort();
    expect((await c.done).kind).toBe("timeout");
  });

  it("a report made before the first attempt is kept too, but not past the ttl", async () => {
    const p = new TtlProbe(spec, systemClock);
    p.report("warn");
    expect(await attempt(p).done).toMatchObject({ status: "warn", message: "reported warn" });
    const clock = new FakeClock();
    const q = new TtlProbe(spec, clock);
    q.report("pass");
    await clock.advance(301);
    const b = attempt(q, clock);
    await tick();
    expect(b.settled()).toBeUndefined();
    b.abort();
    expect((await b.done).kind).toBe("timeout");
  });

  it("a kept report older than the ttl is dropped", async () => {
    const clock = new FakeClock();
    const p = new TtlProbe(spec, clock);
    const a = attempt(p, clock);
    a.abort();
    await a.done;
    p.report("pass");
    await clock.advance(301);
    const b = attempt(p, clock);
    await tick();
    expect(b.settled()).toBeUndefined();
    b.abort();
    expect((await b.done).kind).toBe("timeout");
  });

  it("close() forgets a kept report", async () => {
    const p = new TtlProbe(spec, systemClock);
    p.report("pass");
    p.close();
    const a = attempt(p);
    await tick();
    expect(a.settled()).toBeUndefined();
    a.abort();
    await a.done;
  });

  it("is passive, with fall 1, rise 1, no patience and the ttl as fixed timeout", () => {
    expect(ttlProbe.passive).toBe(true);
    expect(ttlProbe.settings!(ttlSchema.parse({ ttl: "30s" }))).toEqual({
      fall: 1,
      rise: 1,
      patience: false,
      slowThreshold: 0,
      timeout: { mode: "fixed", initial: 30_000, min: 30_000, max: 30_000 },
    });
    const cfg = resolveConfig(
      { targets: [{ id: "svc", checks: [{ type: "ttl", ttl: 5000 }] }] },
      defaultRegistry(),
    );
    const check = cfg.targets[0]!.checks[0]!;
    expect(check.spec).toEqual({ ttl: 5000 });
    expect(check.settings).toMatchObject({ fall: 1, rise: 1, patience: false });
    expect(check.settings.timeout).toMatchObject({ mode: "fixed", initial: 5000, min: 5000, max: 5000 });
    expect(ttlProbe.describe({ ttl: 30_000 })).toBe("ttl 30 s");
  });
});

describe("ttl configuration", () => {
  function issues(check: Record<string, unknown>) {
    try {
      resolveConfig({ targets: [{ id: "t", checks: [{ type: "ttl", ...check }] }] }, defaultRegistry());
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`);
      throw err;
    }
    return [];
  }

  it("names the field in every error", () => {
    expect(issues({ ttl: "soon" })).toEqual([
      'targets[0].checks[0].ttl: invalid duration "soon" (e.g. 500ms, 2s, 1m)',
    ]);
    expect(issues({ ttl: 0 })).toEqual(["targets[0].checks[0].ttl: must be greater than 0"]);
    expect(issues({}).join()).toContain("targets[0].checks[0].ttl");
    expect(issues({ ttl: "1m", url: "x" }).join()).toContain("url");
    expect(issues({ ttl: "1m" })).toEqual([]);
  });
});
