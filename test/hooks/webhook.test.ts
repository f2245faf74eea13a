import { afterEach, describe, expect, it } from "vitest";
import { HookDispatcher } from "../../src/hooks/dispatcher.ts";
import { HookError } from "../../src/hooks/errors.ts";
import { notificationOf } from "../../src/hooks/notification.ts";
import { parseHooks, type WebhookHookConfig } from "../../src/hooks/schema.ts";
import {
  classifyStatus,
  type FetchFn,
  parseRetryAfter,
  retryDelay,
  sendWebhook,
} from "../../src/hooks/webhook.ts";
import { backoffDelay } from "../../src/util/backoff.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";
import { change, type Receiver, receiver, recordingLogger } from "./helpers.ts";

function hook(extra: Record<string, unknown> = {}): WebhookHookConfig {
  return parseHooks([
    { name: "w", webhook: "https://hooks.example.com/T1/secret", ...extra },
  ])[0] as WebhookHookConfig;
}

const note = notificationOf(
  "state",
  change("db", "suspect", "down", { kind: "refused" }),
  Date.UTC(2026, 0, 1),
  "x",
);

/** A fetch answering each call with `answers[i]` (a status, an Error to throw, or "hang"). */
function fakeFetch(answers: Array<number | Error | "hang">, headers: Record<string, string> = {}) {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const fetch: FetchFn = (url, init) => {
    const answer = answers[Math.min(calls.length, answers.length - 1)]!;
    calls.push({ url, init });
    if (answer === "hang") {
      return new Promise((_resolve, reject) =>
        init.signal!.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))),
      );
    }
    if (answer instanceof Error) return Promise.reject(answer);
    return Promise.resolve(
      new Response(answer === 204 ? null : `status ${answer}`, { status: answer, headers }),
    );
  };
  return { fetch, calls };
}

async function run(h: WebhookHookConfig, fetch: FetchFn, random = () => 0.5, stop = new AbortController()) {
  const clock = new FakeClock();
  const delays: number[] = [];
  const p = sendWebhook(
    h,
    note,
    { clock, random, fetch, onRetry: (_a, _e, d) => delays.push(d) },
    stop.signal,
  );
  const settled = p.then(
    (value) => ({ value, error: undefined }),
    (error: HookError) => ({ value: undefined, error }),
  );
  await clock.advance(120_000);
  return { ...(await settled), delays, clock };
}

describe("webhook sender (fake time)", () => {
  it("POSTs the notification as JSON with the hook's headers, redirects not followed", async () => {
    const f = fakeFetch([204]);
    const r = await run(hook({ headers: { Authorization: "Bearer t0k3n" } }), f.fetch);
    expect(r.value).toEqual({ status: 204, attempts: 1 });
    const { url, init } = f.calls[0]!;
    expect(url).toBe("https://hooks.example.com/T1/secret");
    expect(init.method).toBe("POST");
    expect(init.redirect).toBe("manual");
    expect(init.headers).toEqual({ Authorization: "Bearer t0k3n", "content-type": "application/json" });
    expect(JSON.parse(init.body as string)).toEqual({
      event: "state",
      target: "db",
      from: "suspect",
      to: "down",
      at: "2026-01-01T00:00:00.000Z",
      reason: "x",
      kind: "refused",
    });
  });

  it("retries 5xx with full-jitter exponential backoff from src/util/backoff.ts, then gives up", async () => {
    const f = fakeFetch([500]);
    const r = await run(hook({ attempts: 5, backoff: { base: 100, cap: 1000 } }), f.fetch);
    expect(f.calls).toHaveLength(5);
    expect(r.delays).toEqual([50, 100, 200, 400]); // random 0.5 × 100·2^n
    for (let i = 0; i < 4; i++) {
      expect(r.delays[i]).toBe(backoffDelay(i, { base: 100, cap: 1000, jitter: "full" }, () => 0.5));
    }
    expect(r.error).toBeInstanceOf(HookError);
    expect(r.error!.code).toBe("LL_HOOK_HTTP");
    expect(r.error!.status).toBe(500);
    expect(r.error!.message).toContain("https://hooks.example.com");
    expect(r.error!.message).not.toContain("secret"); // only the origin is shown
  });

  it("the delay is capped", async () => {
    expect(retryDelay(10, { base: 500, cap: 30_000 }, () => 0.999999)).toBeLessThanOrEqual(30_000);
    expect(retryDelay(0, { base: 500, cap: 30_000 }, () => 0)).toBe(0);
    expect(retryDelay(0, { base: 500, cap: 30_000 }, () => 0, 2000)).toBe(2000); // Retry-After wins
    expect(retryDelay(0, { base: 500, cap: 30_000 }, () => 0, 90_000)).toBe(30_000); // but not past cap
  });

  // [status, retried]
  const statuses: Array<[number, boolean]> = [
    [500, true],
    [502, true],
    [503, true],
    [429, true],
    [400, false],
    [401, false],
    [404, false],
    [410, false],
    [301, false],
  ];
  it.each(statuses)("status %d: retried %s", async (status, retried) => {
    const f = fakeFetch([status, 200]);
    const r = await run(hook(), f.fetch);
    expect(f.calls).toHaveLength(retried ? 2 : 1);
    if (retried) expect(r.value).toEqual({ status: 200, attempts: 2 });
    else expect(r.error!.code).toBe("LL_HOOK_HTTP");
  });

  it("a 429's Retry-After sets the delay (up to the cap)", async () => {
    const f = fakeFetch([429, 200], { "retry-after": "7" });
    const r = await run(hook(), f.fetch, () => 0);
    expect(r.delays).toEqual([7000]);
    expect(r.value?.attempts).toBe(2);
  });

  it("network errors are retried and reported with their errno", async () => {
    const refused = Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
    const f = fakeFetch([refused]);
    const r = await run(hook({ attempts: 3 }), f.fetch);
    expect(f.calls).toHaveLength(3);
    expect(r.error!.code).toBe("LL_HOOK_NETWORK");
    expect(r.error!.message).toContain("ECONNREFUSED");
  });

  it("an attempt without an answer is aborted at `timeout` and retried", async () => {
    const f = fakeFetch(["hang", "hang", 200]);
    const r = await run(hook({ timeout: "2s", attempts: 3 }), f.fetch);
    expect(f.calls).toHaveLength(3);
    expect(f.calls[0]!.init.signal!.aborted).toBe(true);
    expect(r.value).toEqual({ status: 200, attempts: 3 });

    const g = fakeFetch(["hang"]);
    const s = await run(hook({ timeout: "2s", attempts: 1 }), g.fetch);
    expect(s.error!.code).toBe("LL_HOOK_TIMEOUT");
  });

  it("stopping during a backoff wait ends at once with LL_HOOK_STOPPED", async () => {
    const clock = new FakeClock();
    const stop = new AbortController();
    const f = fakeFetch([500]);
    const p = sendWebhook(
      hook({ backoff: { base: "10s", cap: "10s" } }),
      note,
      { clock, random: () => 1, fetch: f.fetch },
      stop.signal,
    );
    const caught = p.then(
      () => undefined,
      (e: HookError) => e,
    );
    await clock.advance(100);
    stop.abort();
    expect((await caught)?.code).toBe("LL_HOOK_STOPPED");
    expect(f.calls).toHaveLength(1);
  });

  it("reads Retry-After and classifies statuses", () => {
    const now = Date.UTC(2026, 0, 1);
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect([200, 204, 299, 300, 404, 429, 500].map(classifyStatus)).toEqual([
      "ok",
      "ok",
      "ok",
      "fail",
      "fail",
      "retry",
      "retry",
    ]);
  });
});

describe("webhook against a real HTTP server on 127.0.0.1", () => {
  let server: Receiver | undefined;
  let dispatcher: HookDispatcher | undefined;
  afterEach(async () => {
    await dispatcher?.stop(1000);
    await server?.close();
    dispatcher = undefined;
    server = undefined;
  });

  it("first two requests answered 500: every change delivered exactly once, in order, after 2 retries", async () => {
    server = await receiver((n) => (n < 2 ? 500 : 200));
    const logger = recordingLogger();
    dispatcher = new HookDispatcher(
      parseHooks([
        {
          name: "ops",
          webhook: server.url,
          headers: { Authorization: "Bearer abc" },
          backoff: { base: "20ms", cap: "100ms" },
          timeout: "5s",
        },
      ]),
      { logger, monitor: "test-monitor" },
    );
    const changes = [
      change("db", "healthy", "suspect"),
      change("db", "suspect", "down", { kind: "refused", errno: "ECONNREFUSED" }),
      change("api", "healthy", "degraded", { kind: "overloaded" }),
    ];
    for (const t of changes) dispatcher.notify(t);
    expect(await dispatcher.stop(20_000)).toEqual({ unfinished: 0 });

    expect(server.requests.map((r) => r.status)).toEqual([500, 500, 200, 200, 200]);
    const delivered = server.delivered() as Array<Record<string, unknown>>;
    expect(delivered.map((b) => `${b.target}:${b.to}`)).toEqual(["db:suspect", "db:down", "api:degraded"]);
    expect(delivered[1]).toEqual({
      event: "state",
      target: "db",
      from: "suspect",
      to: "down",
      at: new Date(changes[1]!.at).toISOString(),
      reason: "suspect → down",
      kind: "refused",
      errno: "ECONNREFUSED",
      monitor: "test-monitor",
    });
    // the retried request was the first notification, sent again unchanged
    expect(server.requests.slice(0, 3).map((r) => r.body)).toEqual([
      delivered[0],
      delivered[0],
      delivered[0],
    ]);
    for (const r of server.requests) {
      expect(r.method).toBe("POST");
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers.authorization).toBe("Bearer abc");
    }
    expect(dispatcher.stats()).toEqual({ sent: 3, failed: 0, retries: 2, dropped: 0, suppressed: 0 });
    expect(logger.lines.filter((l) => l.level === "warn")).toEqual([]);
    // no log line carries the URL's path (it may be the secret) or the headers
    expect(JSON.stringify(logger.lines)).not.toContain("secret-token");
    expect(JSON.stringify(logger.lines)).not.toContain("Bearer");
  });

  it("a 400 is not retried: failed once, logged as a warning, the next one still goes", async () => {
    server = await receiver((n) => (n === 0 ? 400 : 200));
    const logger = recordingLogger();
    dispatcher = new HookDispatcher(parseHooks([{ name: "ops", webhook: server.url }]), { logger });
    dispatcher.notify(change("db", "healthy", "down"));
    dispatcher.notify(change("db", "down", "healthy"));
    await dispatcher.stop(20_000);
    expect(server.requests.map((r) => r.status)).toEqual([400, 200]);
    expect(dispatcher.stats()).toMatchObject({ sent: 1, failed: 1, retries: 0 });
    const warn = logger.lines.find((l) => l.level === "warn")!;
    expect(warn.obj).toMatchObject({ hook: "ops", target: "db", code: "LL_HOOK_HTTP", status: 400 });
  });
});
