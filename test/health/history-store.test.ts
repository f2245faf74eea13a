import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_RETENTION, type HistoryOptions, HistoryStore } from "../../src/health/history-store.ts";
import type { CheckResult, TargetState, Transition } from "../../src/health/types.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";
import type { Logger } from "../../src/util/logger.ts";

/**
 * HistoryStore on its own, on fake time: what is written comes back in order, batching loses
 * nothing, retention and the per-target cap prune what they should, counters last.
 */

const HOUR = 3_600_000;
const dirs: string[] = [];
const open: HistoryStore[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-history-"));
  dirs.push(dir);
  return join(dir, "history.db");
}

function store(path: string, clock: FakeClock, opts: Partial<HistoryOptions> = {}, logger?: Logger) {
  const s = new HistoryStore({ path, ...opts }, { clock, ...(logger ? { logger } : {}) });
  open.push(s);
  return s;
}

function result(target: string, at: number, extra: Partial<CheckResult> = {}): CheckResult {
  return {
    target,
    check: "tcp",
    at,
    status: "pass",
    message: "connected",
    latency: 3,
    timeout: 2000,
    ...extra,
  };
}

function tr(target: string, at: number, from: TargetState, to: TargetState, extra: Partial<Transition> = {}) {
  return { target, at, from, to, reason: `${from} -> ${to}`, evidence: {}, ...extra } satisfies Transition;
}

/** Rows in a table, read through a separate connection (what is on disk, not in memory). */
function count(path: string, table: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
  } finally {
    db.close();
  }
}

describe("HistoryStore", () => {
  it("gives back a target's results and transitions oldest first, every field intact", () => {
    const clock = new FakeClock();
    const s = store(tempFile(), clock);
    const t0 = clock.wall();
    const fail = result("a", t0 + 30, {
      status: "fail",
      kind: "refused",
      errno: "ECONNREFUSED",
      message: "connect ECONNREFUSED",
      conclusive: true,
      detail: { port: 5, nested: { ok: false } },
    });
    const odd = result("a", t0 + 20, { provisional: true, spoiled: "stall", late: true, passive: true });
    s.recordResult(result("a", t0 + 10));
    s.recordResult(result("b", t0 + 15));
    s.recordResult(odd);
    s.recordResult(fail);
    s.recordResult(result("a", t0 + 30, { message: "same time, recorded later" }));
    const down = tr("a", t0 + 30, "suspect", "down", {
      kind: "refused",
      errno: "ECONNREFUSED",
      evidence: { check: "tcp", failures: 3, kind: "refused", latency: 1.5 },
    });
    s.recordTransition(tr("a", t0 + 10, "unknown", "healthy"));
    s.recordTransition(tr("b", t0 + 15, "unknown", "healthy"));
    s.recordTransition(down);
    const a = s.load("a", 0);
    expect(a.results.map((r) => r.at - t0)).toEqual([10, 20, 30, 30]);
    expect(a.results[1]).toEqual(odd);
    expect(a.results[2]).toEqual(fail);
    expect(a.results[3]!.message).toBe("same time, recorded later");
    expect(a.transitions).toEqual([tr("a", t0 + 10, "unknown", "healthy"), down]);
    expect(s.load("b", 0).results).toEqual([result("b", t0 + 15)]);
    expect(s.load("nobody", 0)).toEqual({ results: [], transitions: [] });
    // `since` is inclusive; limits keep the newest rows
    expect(s.load("a", t0 + 20).results.map((r) => r.at - t0)).toEqual([20, 30, 30]);
    const limited = s.load("a", 0, { results: 2, transitions: 1 });
    expect(limited.results.map((r) => r.at - t0)).toEqual([30, 30]);
    expect(limited.transitions).toEqual([down]);
    expect(s.targets()).toEqual(["a", "b"]);
  });

  it("batches writes: nothing on disk until the flush interval, all of it in one go", async () => {
    const clock = new FakeClock();
    const path = tempFile();
    const s = store(path, clock, { flushInterval: 1000 });
    const t0 = clock.wall();
    for (let i = 0; i < 300; i++) s.recordResult(result(`t${i % 30}`, t0 + i));
    s.recordTransition(tr("t0", t0, "unknown", "healthy"));
    expect(s.pending).toBe(301);
    expect(count(path, "history_results")).toBe(0);
    await clock.advance(999);
    expect(count(path, "history_results")).toBe(0);
    await clock.advance(1);
    expect(s.pending).toBe(0);
    expect(count(path, "history_results")).toBe(300);
    expect(count(path, "history_transitions")).toBe(1);
    expect(clock.pendingTimers()).toBe(0); // no timer while nothing is buffered
  });

  it("loses nothing on close and gives it all back when the file is reopened", () => {
    const clock = new FakeClock();
    const path = tempFile();
    const s = store(path, clock);
    const t0 = clock.wall();
    for (let i = 0; i < 50; i++)
      s.recordResult(result("a", t0 + i, i % 5 === 0 ? { status: "fail", kind: "timeout" } : {}));
    s.recordTransition(tr("a", t0, "unknown", "healthy"));
    s.recordTransition(tr("a", t0 + 40, "healthy", "suspect"));
    const before = s.load("a", 0);
    s.recordResult(result("a", t0 + 60));
    s.close();
    expect(s.closed).toBe(true);
    s.recordResult(result("a", t0 + 70)); // ignored once closed
    const again = store(path, clock);
    const after = again.load("a", 0);
    expect(after.results).toEqual([...before.results, result("a", t0 + 60)]);
    expect(after.transitions).toEqual(before.transitions);
    expect(again.counters("a")).toEqual({ results: 51, failures: 10, errors: { timeout: 10 } });
  });

  it("keeps totals the way TargetHistory counts them, across batches and reopening", async () => {
    const clock = new FakeClock();
    const path = tempFile();
    const s = store(path, clock);
    const t0 = clock.wall();
    s.recordResult(result("a", t0));
    s.recordResult(result("a", t0 + 1, { status: "fail", kind: "refused" }));
    s.recordResult(result("a", t0 + 2, { status: "fail", kind: "timeout", provisional: true }));
    s.recordResult(result("a", t0 + 3, { status: "fail", kind: "timeout", spoiled: "stall" }));
    s.recordResult(result("a", t0 + 4, { status: "warn", kind: "overloaded" }));
    await clock.advance(1000);
    s.recordResult(result("a", t0 + 5, { status: "fail", kind: "refused" }));
    s.recordTransition(tr("only-transitions", t0, "unknown", "disabled"));
    s.close();
    const again = store(path, clock);
    expect(again.counters("a")).toEqual({ results: 4, failures: 2, errors: { refused: 2 } });
    expect(again.counters("only-transitions")).toEqual({ results: 0, failures: 0, errors: {} });
    expect(again.counters("nobody")).toBeUndefined();
    expect(again.restore("a", { results: 2, transitions: 10 })).toMatchObject({
      counters: { results: 4, failures: 2 },
      transitions: [],
    });
  });

  it("prunes rows older than retention at the `now` given, and idle targets' counters", async () => {
    const clock = new FakeClock();
    const s = store(tempFile(), clock, { retention: 2 * HOUR, pruneInterval: 1000 * HOUR });
    const t0 = clock.wall();
    s.recordResult(result("gone", t0)); // a target removed from the configuration after t0
    for (let h = 0; h < 5; h++) {
      s.recordResult(result("a", clock.wall()));
      s.recordTransition(tr("a", clock.wall(), "healthy", "suspect"));
      await clock.advance(HOUR); // flushed 1 s after each hour
    }
    expect(s.prune(t0 + 2 * HOUR + 500)).toEqual({ results: 2, transitions: 1, targets: 0 });
    expect(s.load("a", 0).results.map((r) => (r.at - t0) / HOUR)).toEqual([1, 2, 3, 4]);
    // the removed target's counters stay until it has been idle for a whole retention period
    expect(s.counters("gone")).toEqual({ results: 1, failures: 0, errors: {} });
    expect(s.prune(t0 + 2 * HOUR + 500)).toEqual({ results: 0, transitions: 0, targets: 0 });
    expect(s.prune(t0 + 4 * HOUR)).toEqual({ results: 1, transitions: 1, targets: 1 });
    expect(s.counters("gone")).toBeUndefined();
    expect(s.load("a", 0).transitions.map((t) => (t.at - t0) / HOUR)).toEqual([2, 3, 4]);
    expect(s.counters("a")).toMatchObject({ results: 5 }); // totals outlive pruned rows
    expect(s.targets()).toEqual(["a"]);
  });

  it("keeps at most maxResultsPerTarget results per target", () => {
    const clock = new FakeClock();
    const s = store(tempFile(), clock, { maxResultsPerTarget: 10 });
    const t0 = clock.wall();
    for (let i = 0; i < 25; i++) s.recordResult(result("a", t0 + i));
    for (let i = 0; i < 5; i++) s.recordResult(result("b", t0 + i));
    expect(s.prune(t0 + 100)).toEqual({ results: 15, transitions: 0, targets: 0 });
    expect(s.load("a", 0).results.map((r) => r.at - t0)).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    expect(s.load("b", 0).results).toHaveLength(5);
  });

  it("prunes at open and at the first flush after each pruneInterval, on the store's clock", async () => {
    const MIN = 60_000;
    const clock = new FakeClock();
    const path = tempFile();
    const s = store(path, clock, { retention: 5 * MIN, pruneInterval: 10 * MIN });
    const t0 = clock.wall();
    s.recordResult(result("a", clock.wall()));
    await clock.advance(6 * MIN);
    s.recordResult(result("a", clock.wall()));
    await clock.advance(1000);
    // the first row is past retention, but the prune interval has not passed
    expect(count(path, "history_results")).toBe(2);
    await clock.advance(4 * MIN - 1000);
    s.recordResult(result("a", clock.wall()));
    await clock.advance(1000);
    expect(s.load("a", 0).results.map((r) => (r.at - t0) / MIN)).toEqual([6, 10]);
    s.close();
    // reopened much later, the file is pruned at once
    clock.stall(3 * HOUR);
    const later = store(path, clock, { retention: 5 * MIN });
    expect(count(path, "history_results")).toBe(0);
    expect(later.load("a", 0).results).toEqual([]);
  });

  it("defaults: 7 days of retention", () => {
    const s = store(":memory:", new FakeClock());
    expect(s.retention).toBe(DEFAULT_RETENTION);
    expect(DEFAULT_RETENTION).toBe(7 * 24 * HOUR);
  });

  it("refuses a file it cannot open with LL_HISTORY_OPEN", () => {
    const path = join(tempFile(), "no", "such", "dir", "h.db");
    expect(() => new HistoryStore({ path })).toThrow(expect.objectContaining({ code: "LL_HISTORY_OPEN" }));
  });

  it("keeps rows in memory while writes fail, and writes them once it can", () => {
    const clock = new FakeClock();
    const path = tempFile();
    const warnings: string[] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn: (_o, msg) => warnings.push(msg ?? ""),
      error() {},
    };
    const s = store(path, clock, {}, logger);
    const t0 = clock.wall();
    // Another connection holds the write lock: the flush fails without blocking.
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    s.recordResult(result("a", t0));
    expect(s.flush()).toBe(false);
    expect(s.pending).toBe(1);
    expect(warnings).toHaveLength(1);
    other.exec("COMMIT");
    other.close();
    expect(s.flush()).toBe(true);
    expect(s.load("a", 0).results).toHaveLength(1);
  });
});
