import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.ts";
import { HookDispatcher } from "../../src/hooks/dispatcher.ts";
import type { Notification } from "../../src/hooks/notification.ts";
import { type HookInput, parseHooks } from "../../src/hooks/schema.ts";
import type { FetchFn } from "../../src/hooks/webhook.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";
import { change, recordingLogger } from "./helpers.ts";

/**
 * The dispatcher on fake time with a fake fetch: filters, flap damping, queues, reload and
 * stop. Each hook posts to its own URL (http://hook.test/NAME), recorded in order.
 */
function setup(hooks: HookInput[], opts: { gate?: boolean } = {}) {
  const clock = new FakeClock();
  const logger = recordingLogger();
  const got: Record<string, Notification[]> = {};
  const waiting: Array<() => void> = [];
  const fetch: FetchFn = async (url, init) => {
    if (opts.gate) await new Promise<void>((resolve) => waiting.push(resolve));
    const name = new URL(url).pathname.slice(1);
    const list = got[name] ?? [];
    got[name] = list;
    list.push(JSON.parse(init.body as string));
    return new Response(null, { status: 204 });
  };
  const d = new HookDispatcher(
    parseHooks(hooks.map((h) => ({ webhook: `http://hook.test/${h.name}`, ...h }))),
    { clock, logger, fetch, random: () => 0.5 },
  );
  const seen = (name: string) => (got[name] ?? []).map((n) => `${n.event}:${n.target}:${n.to}`);
  /** Lets the gated fetches through, one at a time. */
  const release = async () => {
    while (waiting.length) {
      waiting.shift()!();
      await clock.advance(1);
    }
  };
  return { clock, logger, d, got, seen, release, advance: (ms: number) => clock.advance(ms) };
}

describe("HookDispatcher", () => {
  it("filters on targets and states; initial changes from unknown only with notifyInitial", async () => {
    const h = setup([
      { name: "all" },
      { name: "db-down", targets: ["db-*"], to: ["down"] },
      { name: "initial", targets: ["api"], notifyInitial: true },
      { name: "flaps-only", events: ["flapping", "stable"] },
    ]);
    h.d.notify(change("db-1", "unknown", "healthy"));
    h.d.notify(change("api", "unknown", "down"));
    h.d.notify(change("db-1", "healthy", "suspect"));
    h.d.notify(change("db-1", "suspect", "down"));
    h.d.notify(change("cache", "healthy", "down"));
    h.d.notify(change("api", "down", "recovering"));
    await h.advance(10);
    expect(h.seen("all")).toEqual([
      "state:db-1:suspect",
      "state:db-1:down",
      "state:cache:down",
      "state:api:recovering",
    ]);
    expect(h.seen("db-down")).toEqual(["state:db-1:down"]);
    expect(h.seen("initial")).toEqual(["state:api:down", "state:api:recovering"]);
    expect(h.seen("flaps-only")).toEqual([]);
    expect(h.d.stats()).toEqual({ sent: 7, failed: 0, retries: 0, dropped: 0, suppressed: 0 });
  });

  it("a flapping target gives one 'flapping' notice, then nothing until 'stable'", async () => {
    const h = setup([
      { name: "ops", flap: { window: "10m", threshold: 4, quiet: "5m" } },
      { name: "raw", flap: false },
      { name: "db-down", targets: ["db"], to: ["down"], flap: { threshold: 2, quiet: "5m" } },
    ]);
    const states = ["suspect", "down", "recovering", "healthy"] as const;
    let from: (typeof states)[number] | "healthy" = "healthy";
    for (let i = 0; i < 12; i++) {
      const to = states[i % 4]!;
      h.d.notify(change("db", from, to, { reason: `change ${i}` }));
      from = to;
      await h.advance(10_000); // one change every 10 s
    }
    h.d.notify(change("other", "healthy", "down"));
    await h.advance(10);
    expect(h.seen("ops")).toEqual([
      "state:db:suspect",
      "state:db:down",
      "state:db:recovering",
      "flapping:db:healthy",
      "state:other:down",
    ]);
    expect(h.seen("raw")).toHaveLength(13);
    expect(h.seen("db-down")).toEqual(["state:db:down", "flapping:db:down"]);
    const flapping = h.got.ops![3]!;
    expect(flapping.reason).toBe(
      "flapping: 4 changes within 10 minutes; changes are not notified until it holds one state for 5 minutes (last: change 3)",
    );
    expect(h.d.flapping("ops")).toEqual(["db"]);
    expect(h.d.stats().suppressed).toBe(8 + 1); // ops: changes 4..11; db-down: the third "down"

    // quiet for 5 minutes after the last change (at 110 s): stable, with the state it holds
    await h.advance(5 * 60_000);
    expect(h.seen("ops").slice(5)).toEqual(["stable:db:healthy"]);
    const stable = h.got.ops![5]!;
    expect(stable).toMatchObject({ from: "healthy", to: "healthy", event: "stable" });
    expect(stable.reason).toBe("stable: healthy for 5 minutes after flapping (9 changes, 8 not notified)");
    expect(h.seen("db-down").slice(2)).toEqual(["stable:db:healthy"]);
    expect(h.d.flapping("ops")).toEqual([]);

    // and its changes are notified again
    h.d.notify(change("db", "healthy", "suspect"));
    await h.advance(10);
    expect(h.seen("ops").slice(6)).toEqual(["state:db:suspect"]);
    expect(h.clock.pendingTimers()).toBe(0);
  });

  it("a full queue drops its oldest waiting notification, with a warning", async () => {
    const h = setup([{ name: "slow", queue: 2 }], { gate: true });
    for (let i = 1; i <= 5; i++) h.d.notify(change(`t${i}`, "healthy", "down"));
    await h.release();
    expect(h.seen("slow")).toEqual(["state:t1:down", "state:t4:down", "state:t5:down"]);
    expect(h.d.stats()).toMatchObject({ sent: 3, dropped: 2 });
    const warns = h.logger.lines.filter((l) => l.level === "warn");
    expect(warns.map((w) => (w.obj as { target: string }).target)).toEqual(["t2", "t3"]);
    expect(warns[0]!.msg).toBe("hook: queue full, oldest notification dropped");
  });

  it("one slow hook does not hold up another", async () => {
    const clock = new FakeClock();
    const fastGot: string[] = [];
    let slowCalls = 0;
    const fetch: FetchFn = async (url, init) => {
      if (url.endsWith("/slow")) {
        slowCalls++;
        return new Promise(() => {}); // never answers
      }
      fastGot.push((JSON.parse(init.body as string) as Notification).to);
      return new Response(null, { status: 200 });
    };
    const d = new HookDispatcher(
      parseHooks([
        { name: "slow", webhook: "http://hook.test/slow", timeout: "1h", attempts: 1 },
        { name: "fast", webhook: "http://hook.test/fast" },
      ]),
      { clock, fetch },
    );
    d.notify(change("a", "healthy", "down"));
    d.notify(change("a", "down", "healthy"));
    await clock.advance(10);
    expect(fastGot).toEqual(["down", "healthy"]);
    expect(slowCalls).toBe(1);
    expect(d.pending()).toBe(2);
    const stopped = d.stop(1000);
    await clock.advance(2000);
    expect(await stopped).toEqual({ unfinished: 2 });
    expect(d.statsByHook()).toEqual({
      slow: { sent: 0, failed: 1, retries: 0, dropped: 1, suppressed: 0 },
      fast: { sent: 2, failed: 0, retries: 0, dropped: 0, suppressed: 0 },
    });
  });

  it("replace(): kept hooks keep their counters, removed ones finish their queue, new ones start", async () => {
    const h = setup([{ name: "keep" }, { name: "gone" }], { gate: true });
    h.d.notify(change("a", "healthy", "down"));
    h.d.notify(change("a", "down", "healthy"));
    h.d.replace(
      parseHooks([
        { name: "keep", webhook: "http://hook.test/keep", to: ["down"] },
        { name: "new", webhook: "http://hook.test/new" },
      ]),
    );
    h.d.notify(change("a", "healthy", "suspect"));
    h.d.notify(change("a", "suspect", "down"));
    await h.release();
    expect(h.seen("gone")).toEqual(["state:a:down", "state:a:healthy"]);
    expect(h.seen("keep")).toEqual(["state:a:down", "state:a:healthy", "state:a:down"]);
    expect(h.seen("new")).toEqual(["state:a:suspect", "state:a:down"]);
    expect(h.d.statsByHook().keep!.sent).toBe(3);
    expect(h.d.statsByHook().gone!.sent).toBe(2);
    expect(h.d.stats().sent).toBe(7);
  });

  it("rejects duplicate hook names; ignores notifications after stop", async () => {
    const hooks = parseHooks([{ name: "a", command: ["true"] }]);
    expect(() => new HookDispatcher([...hooks, ...hooks])).toThrow(ConfigError);
    const h = setup([{ name: "x" }]);
    await h.d.stop(100);
    h.d.notify(change("a", "healthy", "down"));
    await h.advance(10);
    expect(h.seen("x")).toEqual([]);
    expect(h.d.pending()).toBe(0);
  });
});
