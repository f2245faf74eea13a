import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { resolveConfig } from "../../src/config/resolve.ts";
import { HealthEngine } from "../../src/health/engine.ts";
import { availability, GAP_REASON, meanTimes, TargetHistory } from "../../src/health/history.ts";
import { type HistoryOptions, HistoryStore } from "../../src/health/history-store.ts";
import { defaultRegistry } from "../../src/health/probes/index.ts";
import { ProbeRegistry } from "../../src/health/probes/registry.ts";
import type { CheckResult, TargetState, Transition } from "../../src/health/types.ts";
import { seededRandom } from "../../src/util/clock.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";
import { pass, refuse, ScriptedProbe } from "../support/scripted-probe.ts";
import { tcpServer } from "../support/servers.ts";

/**
 * Lasting history through the engine: a restarted engine on the same file shows the history
 * and trends the previous one had, with the time it was not running left unobserved.
 */

const SEC = 1000;
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-history-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "history.db");
}

function tr(at: number, from: TargetState, to: TargetState): Transition {
  return { target: "t", from, to, at, reason: "", evidence: {} };
}

function ok(at: number): CheckResult {
  return { target: "t", check: "c", at, status: "pass", message: "", latency: 1, timeout: 1000 };
}

describe("TargetHistory.restore: the time the monitor was not running is unobserved", () => {
  it("appends a transition to unknown at the last observation, and trends skip the gap", () => {
    const h = new TargetHistory(10, 10);
    const gap = h.restore({
      results: [ok(0), ok(30 * SEC), ok(40 * SEC)],
      transitions: [tr(0, "unknown", "healthy"), tr(30 * SEC, "healthy", "down")],
      counters: { results: 3, failures: 1, errors: { refused: 1 } },
    });
    expect(gap).toEqual({
      target: "t",
      from: "down",
      to: "unknown",
      at: 40 * SEC,
      reason: GAP_REASON,
      evidence: {},
    });
    expect(h.counters()).toEqual({ results: 3, failures: 1 });
    // the restarted monitor sees the target healthy at 100 s
    h.transition(tr(100 * SEC, "unknown", "healthy"));
    const trends = h.trends(120 * SEC);
    // observed: healthy 0–30 s, down 30–40 s, healthy 100–120 s; 40–100 s unobserved
    expect(trends.availability["1h"]).toBeCloseTo(50 / 60, 6);
    expect(trends.availability["1m"]).toBe(1);
    expect(trends.flaps1h).toBe(1);
    // the down period was cut by the gap: no recovery to measure, nor an up period after it
    expect(trends.mttr).toBeNull();
    expect(trends.errors.refused).toBe(1);
    // without the marker the whole gap would have counted as down
    const naive = [
      tr(0, "unknown", "healthy"),
      tr(30 * SEC, "healthy", "down"),
      tr(100 * SEC, "unknown", "healthy"),
    ];
    expect(availability(naive, 120 * SEC, HOUR)).toBeCloseTo(50 / 120, 6);
  });

  it("adds nothing when there is nothing, or when the saved history already ends unobserved", () => {
    expect(new TargetHistory(4, 4).restore({ results: [], transitions: [] })).toBeUndefined();
    const h = new TargetHistory(4, 4);
    expect(
      h.restore({
        results: [ok(50)],
        transitions: [tr(0, "unknown", "healthy"), tr(40, "healthy", "unknown")],
      }),
    ).toBeUndefined();
    expect(h.recentTransitions()).toHaveLength(2);
  });

  it("meanTimes: periods interrupted by unknown are not completed periods", () => {
    const ts = [
      tr(0, "unknown", "healthy"),
      tr(100, "healthy", "down"), // up 0–100
      tr(150, "down", "healthy"), // down 50
      tr(300, "healthy", "unknown"), // up period cut
      tr(1000, "unknown", "healthy"),
      tr(1100, "healthy", "down"), // up 1000–1100
      tr(1200, "down", "unknown"), // down period cut
      tr(5000, "unknown", "down"),
      tr(5030, "down", "healthy"), // down 30
    ];
    expect(meanTimes(ts)).toEqual({ mttr: 40, mtbf: 100 });
  });
});

/** An engine on fake time whose targets are scripted probes, with lasting history. */
function scriptedEngine(clock: FakeClock, history: HistoryStore | HistoryOptions, ids: string[]) {
  const probes = new Map<string, ScriptedProbe>();
  const registry = new ProbeRegistry().register({
    type: "scripted",
    schema: z.object({ key: z.string() }).strict(),
    create: (spec) => {
      const p = new ScriptedProbe();
      probes.set(spec.key, p);
      return p;
    },
    describe: (spec) => `scripted ${spec.key}`,
  });
  const config = (targets: string[]) =>
    resolveConfig(
      { targets: targets.map((id) => ({ id, checks: [{ type: "scripted", key: id }] })) },
      registry,
    );
  const engine = new HealthEngine(config(ids), { registry, clock, random: seededRandom(1), history });
  cleanups.push(() => engine.stop());
  return { engine, probes, config };
}

describe("engine with lasting history, on fake time", () => {
  it("a restarted engine continues the trends; the downtime is unobserved; retention forgets", async () => {
    const path = tempFile();
    const clock = new FakeClock();
    const first = scriptedEngine(clock, { path }, ["a", "b"]);
    first.engine.start();
    await clock.advance(10 * MIN);
    first.probes.get("a")!.behaviour = () => refuse();
    await clock.advance(10 * MIN);
    first.probes.get("a")!.behaviour = () => pass();
    await clock.advance(10 * MIN);
    const before = first.engine.history("a")!;
    const trendsBefore = first.engine.target("a")!.trends;
    expect(before.transitions.map((t) => t.to)).toEqual([
      "healthy",
      "suspect",
      "down",
      "recovering",
      "healthy",
    ]);
    expect(trendsBefore.mttr).not.toBeNull();
    await first.engine.stop();
    expect(first.engine.historyStore!.closed).toBe(true); // the engine opened it, the engine closed it

    // An hour later, a new process (a new clock on the same wall time line).
    const later = new FakeClock(clock.now() + HOUR);
    const second = scriptedEngine(later, { path }, ["a", "b"]);
    const restored = second.engine.history("a")!;
    expect(restored.results).toEqual(before.results);
    expect(restored.transitions.slice(0, -1)).toEqual(before.transitions);
    const gap = restored.transitions.at(-1)!;
    expect(gap).toMatchObject({ from: "healthy", to: "unknown", reason: GAP_REASON });
    expect(gap.at).toBe(before.results.at(-1)!.at);
    const snap = second.engine.target("a")!;
    expect(snap.state).toBe("unknown"); // the current state is not faked
    // the hour the monitor was down counts neither way: same 24 h availability, MTTR, errors
    expect(snap.trends.availability["24h"]).toBeCloseTo(trendsBefore.availability["24h"]!, 3);
    expect(snap.trends.availability["24h"]).toBeLessThan(1);
    expect(snap.trends.availability["1m"]).toBeNull();
    expect(snap.trends.mttr).toBe(trendsBefore.mttr);
    expect(snap.trends.flaps1h).toBe(0); // the flap was more than an hour ago now
    expect(snap.trends.errors).toEqual(trendsBefore.errors);
    expect(snap.trends.latency).toEqual(trendsBefore.latency);
    expect(second.engine.target("b")!.trends.availability["24h"]).toBe(1);

    // Checks resume; the gap stays marked in the file for the next restart.
    second.engine.start();
    await later.advance(5 * MIN);
    const resumed = second.engine.history("a")!.transitions;
    expect(resumed.slice(-2).map((t) => `${t.from}>${t.to}`)).toEqual(["healthy>unknown", "unknown>healthy"]);
    const upAgainAt = resumed.at(-1)!.at;
    const trendsNow = second.engine.target("a")!.trends;
    // observed time: the first 30 min (10 of them down) and the last few minutes
    const observed = 30 * MIN + (later.wall() - upAgainAt);
    expect(trendsNow.availability["24h"]).toBeCloseTo((observed - 10 * MIN) / observed, 2);

    // A target removed and added back by `apply` gets its history back.
    second.engine.apply(second.config(["b"]));
    expect(second.engine.history("a")).toBeUndefined();
    await later.advance(2 * MIN);
    second.engine.apply(second.config(["a", "b"]));
    const readded = second.engine.history("a")!.transitions;
    expect(readded.length).toBe(resumed.length + 1);
    expect(readded.at(-1)).toMatchObject({ from: "healthy", to: "unknown", reason: GAP_REASON });
    await second.engine.stop();

    // Eight days later, everything is past the 7-day retention: pruned when the file opens.
    const muchLater = new FakeClock(later.now() + 8 * DAY);
    const third = scriptedEngine(muchLater, { path }, ["a"]);
    expect(third.engine.history("a")).toEqual({ results: [], transitions: [] });
    const forgotten = third.engine.target("a")!.trends;
    expect(forgotten.availability["24h"]).toBeNull();
    expect(forgotten.errors.refused).toBe(0);
    expect(third.engine.historyStore!.targets()).toEqual([]);
  });

  it("a store the caller owns is flushed by stop(), not closed", async () => {
    const clock = new FakeClock();
    const store = new HistoryStore({ path: ":memory:" }, { clock });
    cleanups.push(() => store.close());
    const { engine } = scriptedEngine(clock, store, ["a"]);
    engine.start();
    await clock.advance(3 * SEC);
    expect(engine.history("a")!.transitions).toHaveLength(1);
    await engine.stop();
    expect(store.closed).toBe(false);
    expect(store.pending).toBe(0);
    expect(store.load("a", 0).transitions.map((t) => t.to)).toEqual(["healthy"]);
    expect(store.counters("a")!.results).toBe(engine.history("a")!.results.length);
  });
});

describe("engine with lasting history, on a real TCP server", () => {
  /** Resolves with the transition that brings `target` to `state` (watching from now). */
  function reach(engine: HealthEngine, target: string, state: TargetState, within = 15_000) {
    return new Promise<Transition>((resolve, reject) => {
      const timer = setTimeout(() => {
        engine.off("state", on);
        reject(new Error(`${target} did not become ${state}; it is ${engine.target(target)?.state}`));
      }, within);
      const on = (t: Transition) => {
        if (t.target !== target || t.to !== state) return;
        clearTimeout(timer);
        engine.off("state", on);
        resolve(t);
      };
      engine.on("state", on);
    });
  }

  it("a new engine on the same file shows the earlier transitions, results and trends before any check", async () => {
    const path = tempFile();
    const server = await tcpServer();
    let serverOpen = true;
    cleanups.push(() => (serverOpen ? server.close() : undefined));
    const registry = defaultRegistry();
    const config = resolveConfig(
      {
        profile: "lan",
        defaults: { interval: "200ms", fastInterval: "100ms" },
        targets: [{ id: "srv", address: server.address }],
      },
      registry,
    );
    const first = new HealthEngine(config, { registry, history: { path } });
    cleanups.push(() => first.stop());
    const healthy = reach(first, "srv", "healthy");
    first.start();
    await healthy;
    const down = reach(first, "srv", "down");
    serverOpen = false;
    await server.close();
    const downAt = (await down).at;
    // One more (failed) check while down, so that some down time was observed.
    await new Promise<void>((resolve) => {
      const on = (r: CheckResult) => {
        if (r.at <= downAt) return;
        first.off("result", on);
        resolve();
      };
      first.on("result", on);
    });
    await first.stop();
    const before = first.history("srv")!;
    const countersBefore = first.target("srv")!.trends.errors;

    const second = new HealthEngine(config, { registry, history: { path } });
    cleanups.push(() => second.stop());
    const restored = second.history("srv")!;
    expect(restored.results).toEqual(before.results);
    expect(restored.results.some((r) => r.status === "pass")).toBe(true);
    expect(restored.results.at(-1)).toMatchObject({ status: "fail", kind: "refused" });
    expect(restored.transitions.slice(0, -1)).toEqual(before.transitions);
    expect(restored.transitions.map((t) => t.to)).toEqual([
      ...before.transitions.map((t) => t.to),
      "unknown",
    ]);
    expect(before.transitions[0]).toMatchObject({ from: "unknown", to: "healthy" });
    expect(before.transitions.at(-1)).toMatchObject({ to: "down", kind: "refused", errno: "ECONNREFUSED" });
    const snap = second.target("srv")!;
    expect(snap.state).toBe("unknown");
    expect(snap.checks[0]!.last).toBeNull(); // no new check has run
    expect(snap.trends.availability["24h"]).not.toBeNull();
    expect(snap.trends.availability["24h"]).toBeGreaterThan(0);
    expect(snap.trends.availability["24h"]).toBeLessThan(1);
    expect(snap.trends.flaps1h).toBe(1);
    expect(snap.trends.errors).toEqual(countersBefore);
    expect(snap.trends.errors.refused).toBeGreaterThan(0);
    expect(snap.trends.latency.samples).toBeGreaterThan(0);
  });
});
