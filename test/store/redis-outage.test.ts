/**
 * RedisStore while Redis is unreachable: a frozen server (SIGSTOP) and a killed one. Each
 * test has its own redis-server. Operations fail fast with LL_STORE_UNAVAILABLE (never hang,
 * never report a write that did not happen, never replay it later), `healthy()` turns false,
 * and once Redis is back the store reconnects by itself, turns healthy, and tells watchers to
 * re-read.
 */
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RedisServer, redisSkipReason, startRedis } from "../../bench/lib/redis-server.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { parseRedisUrl } from "../../src/store/redis-url.ts";
import { commit, committed, held, push, record, recordChanges, waitFor } from "./contract-helpers.ts";

const COMMAND_TIMEOUT = 300;

describe.skipIf(redisSkipReason !== undefined)("RedisStore when Redis is unreachable", () => {
  let server: RedisServer;
  const stores: RedisStore[] = [];
  const open = async (): Promise<RedisStore> => {
    const s = new RedisStore(parseRedisUrl(server.url), {
      commandTimeoutMs: COMMAND_TIMEOUT,
      connectTimeoutMs: 1000,
      maxReconnectDelayMs: 100,
    });
    stores.push(s);
    await s.ready();
    return s;
  };

  beforeEach(async () => {
    server = await startRedis();
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await server.stop();
  });

  /** Awaits `p`, expecting LL_STORE_UNAVAILABLE; returns how long it took, ms. */
  async function unavailable(p: Promise<unknown>): Promise<number> {
    const t0 = performance.now();
    await expect(p).rejects.toMatchObject({ code: "LL_STORE_UNAVAILABLE" });
    return performance.now() - t0;
  }

  it("a frozen Redis (SIGSTOP): operations fail within the command timeout, then it recovers", async () => {
    const store = await open();
    const e = await held(store, "s1");
    const w = recordChanges(store);
    await waitFor(() => w.changes.some((c) => c.kind === "any"), 5000, "the subscription");
    expect(store.healthy()).toBe(true);

    server.pause();
    const took = await unavailable(commit(store, "s1", e, 1, [push("s1", "a")]));
    expect(took).toBeGreaterThanOrEqual(COMMAND_TIMEOUT - 50);
    expect(took).toBeLessThan(COMMAND_TIMEOUT + 1000);
    expect(store.healthy()).toBe(false);
    // While it stays frozen, every operation fails within the timeout too (never hangs).
    expect(await unavailable(store.getSession("s1"))).toBeLessThan(COMMAND_TIMEOUT + 1000);
    expect(store.healthy()).toBe(false);

    const anyBefore = w.changes.filter((c) => c.kind === "any").length;
    server.resume();
    await waitFor(() => store.healthy(), 10_000, "the store to be healthy again");
    await waitFor(
      () => w.changes.filter((c) => c.kind === "any").length > anyBefore,
      5000,
      "watchers to be told to re-read",
    );
    // The commit that failed may or may not have reached Redis (its reply was lost): sending it
    // again either commits it or finds it committed — never twice.
    const again = await commit(store, "s1", e, 1, [push("s1", "a")]);
    expect(["committed", "duplicate"]).toContain(again.status);
    expect((await store.pushes("s1", 0, 10)).length).toBe(1);
    await committed(store, "s1", e, 2);
  });

  it("a killed Redis: operations fail at once and are never replayed; after a restart on the same port it works again", async () => {
    const store = await open();
    const other = await open();
    await held(store, "s1");
    const w = recordChanges(store);
    await waitFor(() => w.changes.some((c) => c.kind === "any"), 5000, "the subscription");

    await server.kill();
    await waitFor(() => !store.healthy(), 5000, "the store to notice");
    expect(await unavailable(store.createSession(record("written-while-down")))).toBeLessThan(200);
    expect(await unavailable(store.getSession("s1"))).toBeLessThan(200);
    expect(store.healthy()).toBe(false);

    const anyBefore = w.changes.filter((c) => c.kind === "any").length;
    await server.restart(); // without persistence: an empty Redis
    await waitFor(() => store.healthy() && other.healthy(), 10_000, "both stores to reconnect");
    await waitFor(
      () => w.changes.filter((c) => c.kind === "any").length > anyBefore,
      5000,
      "watchers to be told to re-read",
    );
    // The write refused while Redis was down did not happen, now or later.
    await new Promise((r) => setTimeout(r, 200));
    expect(await store.getSession("written-while-down")).toBeUndefined();
    // Writes work, and the subscription was made again: the other store's commit is announced.
    const e2 = await held(other, "s2");
    await store.createSession(record("s3"));
    await committed(other, "s2", e2, 1, [push("s3", "back")]);
    await waitFor(
      () => w.changes.some((c) => c.kind === "sessions" && c.ids.includes("s3")),
      5000,
      "the announcement",
    );
  });

  it("a Redis out of memory refuses a commit before writing any of it; healthy again once it can write", async () => {
    const store = await open();
    const e = await held(store, "s1");
    await store.createSession(record("s2"));
    const admin = new Redis(server.port, "127.0.0.1");
    try {
      await admin.config("SET", "maxmemory", "1"); // noeviction: every write is refused
      const err = await commit(store, "s1", e, 1, [push("s2", "a"), push("s1", "b")]).catch(
        (x: unknown) => x,
      );
      expect(err).toMatchObject({ code: "LL_STORE_UNAVAILABLE", message: expect.stringContaining("OOM") });
      expect(store.healthy()).toBe(false);
      expect(await store.getSession("s1")).toMatchObject({ lastClientSeq: 0, lastPushSeq: 0 });
      expect(store.healthy()).toBe(false); // a read succeeding says nothing about writes
      expect(await store.getSession("s2")).toMatchObject({ lastPushSeq: 0 });
      await admin.config("SET", "maxmemory", "0");
      await waitFor(() => store.healthy(), 5000, "the store's probe to find Redis writable");
      await committed(store, "s1", e, 1, [push("s2", "a"), push("s1", "b")]);
    } finally {
      admin.disconnect();
    }
  });

  it("close() while Redis is down returns promptly; later calls reject with LL_STORE_CLOSED", async () => {
    const store = await open();
    await server.kill();
    await waitFor(() => !store.healthy(), 5000, "the store to notice");
    const t0 = performance.now();
    await store.close();
    expect(performance.now() - t0).toBeLessThan(500);
    await expect(store.getSession("s1")).rejects.toMatchObject({ code: "LL_STORE_CLOSED" });
    expect(store.healthy()).toBe(false);
  });

  it("ready() gives up with LL_STORE_UNAVAILABLE naming the address, never the password", async () => {
    const url = `redis://:hunter2@127.0.0.1:${server.port}/0`;
    await server.kill();
    const store = new RedisStore(parseRedisUrl(url), { connectTimeoutMs: 300 });
    stores.push(store);
    const t0 = performance.now();
    const err = (await store.ready().then(
      () => new Error("ready"),
      (e: unknown) => e,
    )) as Error;
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(err).toMatchObject({ code: "LL_STORE_UNAVAILABLE" });
    expect(err.message).toContain(`127.0.0.1:${server.port}`);
    expect(err.message).not.toContain("hunter2");
  });
});
