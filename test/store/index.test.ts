/**
 * openStore / parseStoreUrl: which URL opens which store, and the errors for the rest.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { redisSkipReason, startRedis } from "../../bench/lib/redis-server.ts";
import { DEFAULT_STORE_FILE, openStore, parseStoreUrl, type RedisTarget } from "../../src/store/index.ts";
import { closedPort } from "../support/servers.ts";

describe("parseStoreUrl", () => {
  const cwd = "/srv/app";

  it.each([
    ["memory", { kind: "memory" }],
    ["memory:", { kind: "memory" }],
    ["MEMORY", { kind: "memory" }],
    ["sqlite:data/s.db", { kind: "sqlite", path: "/srv/app/data/s.db" }],
    ["sqlite://data/s.db", { kind: "sqlite", path: "/srv/app/data/s.db" }],
    ["sqlite:///var/lib/ll.db", { kind: "sqlite", path: "/var/lib/ll.db" }],
    ["sqlite:/var/lib/ll", { kind: "sqlite", path: "/var/lib/ll" }],
    ["sqlite::memory:", { kind: "sqlite", path: ":memory:" }],
    ["store.db", { kind: "sqlite", path: "/srv/app/store.db" }],
    ["./x/store.sqlite", { kind: "sqlite", path: "/srv/app/x/store.sqlite" }],
    ["/abs/store.sqlite3", { kind: "sqlite", path: "/abs/store.sqlite3" }],
    [undefined, { kind: "sqlite", path: `/srv/app/${DEFAULT_STORE_FILE}` }],
    ["  ", { kind: "sqlite", path: `/srv/app/${DEFAULT_STORE_FILE}` }],
  ])("%s", (url, expected) => {
    expect(parseStoreUrl(url, cwd)).toEqual(expected);
  });

  const redis = (over: Partial<RedisTarget>): RedisTarget => ({
    kind: "redis",
    addresses: [{ host: "localhost", port: 6379 }],
    db: 0,
    tls: false,
    prefix: "lifeline:",
    display: "redis://localhost:6379/0",
    ...over,
  });

  it.each<[string, RedisTarget]>([
    ["redis://localhost", redis({})],
    ["REDIS://localhost:6379/", redis({})],
    [
      "redis://cache.internal:6380/3",
      redis({
        addresses: [{ host: "cache.internal", port: 6380 }],
        db: 3,
        display: "redis://cache.internal:6380/3",
      }),
    ],
    [
      "rediss://:s3cret@cache:6380/0",
      redis({
        addresses: [{ host: "cache", port: 6380 }],
        tls: true,
        password: "s3cret",
        display: "rediss://:***@cache:6380/0",
      }),
    ],
    [
      "redis://alice:p%40ss@[::1]:7000/1?prefix=blue:",
      redis({
        addresses: [{ host: "::1", port: 7000 }],
        db: 1,
        username: "alice",
        password: "p@ss",
        prefix: "blue:",
        display: "redis://alice:***@[::1]:7000/1",
      }),
    ],
    [
      "redis+sentinel://s1:26379,s2:26380,s3/mymaster",
      redis({
        addresses: [
          { host: "s1", port: 26379 },
          { host: "s2", port: 26380 },
          { host: "s3", port: 26379 },
        ],
        sentinelMaster: "mymaster",
        display: "redis+sentinel://s1:26379,s2:26380,s3:26379/mymaster/0",
      }),
    ],
    [
      "rediss+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/prod/2?prefix=c2:",
      redis({
        addresses: [
          { host: "10.0.0.1", port: 26379 },
          { host: "10.0.0.2", port: 26379 },
        ],
        sentinelMaster: "prod",
        db: 2,
        tls: true,
        password: "pw",
        prefix: "c2:",
        display: "rediss+sentinel://:***@10.0.0.1:26379,10.0.0.2:26379/prod/2",
      }),
    ],
  ])("%s", (url, expected) => {
    expect(parseStoreUrl(url, cwd)).toEqual(expected);
  });

  it.each([
    "redis://",
    "redis://host:0",
    "redis://host:99999",
    "redis://host:6379/x",
    "redis://host/1/2",
    "redis://a:1,b:2/0",
    "redis://:s3cret@host/0?db=1",
    "redis+sentinel://:s3cret@s1:26379",
    "redis+sentinel://:s3cret@s1:26379/m/1/2",
    "redis://:s3cret@ho st:1/0",
  ])("%s is refused with LL_STORE_URL, without the password", (url) => {
    expect(() => parseStoreUrl(url, cwd)).toThrow(expect.objectContaining({ code: "LL_STORE_URL" }));
    try {
      parseStoreUrl(url, cwd);
    } catch (err) {
      expect(String((err as Error).message)).not.toContain("s3cret");
    }
  });

  it.each(["postgres://db/x", "mystore", "sqlite:", "sqlite://", "http://x/y.db", "file.txt"])(
    "%s is refused with LL_STORE_URL",
    (url) => {
      expect(() => parseStoreUrl(url, cwd)).toThrow(expect.objectContaining({ code: "LL_STORE_URL" }));
    },
  );

  it("does not quote the password of a URL it does not understand", () => {
    expect(() => parseStoreUrl("postgres://u:s3cret@db/x", cwd)).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining("s3cret") }),
    );
  });
});

describe("openStore", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "lifeline-open-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("opens a memory store", async () => {
    const store = await openStore("memory");
    expect(store.kind).toBe("memory");
    await store.close();
  });

  it("opens the default SQLite file in the working directory", async () => {
    const store = await openStore(undefined, { cwd: dir });
    expect(store.kind).toBe("sqlite");
    expect(existsSync(join(dir, DEFAULT_STORE_FILE))).toBe(true);
    await store.close();
  });

  it("opens a SQLite file named by URL, relative to cwd", async () => {
    const store = await openStore("sqlite:nodes.db", { cwd: dir, busyTimeoutMs: 1000, pollIntervalMs: 50 });
    expect(store.description).toBe(`sqlite ${join(dir, "nodes.db")}`);
    expect(store.healthy()).toBe(true);
    await store.close();
  });

  it.skipIf(redisSkipReason !== undefined)(
    "opens a Redis store and waits until it is connected; its description has no password",
    async () => {
      const server = await startRedis();
      try {
        const admin = new Redis(server.port, "127.0.0.1");
        await admin.config("SET", "requirepass", "s3cret");
        admin.disconnect();
        const store = await openStore(`redis://:s3cret@127.0.0.1:${server.port}/1?prefix=open:`);
        expect(store.kind).toBe("redis");
        expect(store.healthy()).toBe(true);
        expect(store.description).toBe(`redis redis://:***@127.0.0.1:${server.port}/1 (prefix open:)`);
        await store.createSession({
          id: "s1",
          tokenHash: "",
          createdAt: 0,
          lastClientSeq: 0,
          lastPushSeq: 0,
          ackedPushSeq: 0,
          ttl: 1000,
          expiresAt: null,
          owner: null,
          epoch: 0,
        });
        await store.close();
      } finally {
        await server.stop();
      }
    },
  );

  it("fails with LL_STORE_UNAVAILABLE, naming the address but not the password, when Redis does not answer", async () => {
    const port = await closedPort();
    const err = (await openStore(`redis://:s3cret@127.0.0.1:${port}/0`, { connectTimeoutMs: 300 }).then(
      () => new Error("opened"),
      (e: unknown) => e,
    )) as Error;
    expect(err).toMatchObject({ code: "LL_STORE_UNAVAILABLE" });
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).not.toContain("s3cret");
  });

  it("names the file it could not open", async () => {
    await expect(openStore(join(dir, "no", "such", "dir.db"))).rejects.toMatchObject({
      code: "LL_STORE_OPEN",
      message: expect.stringContaining("dir.db"),
    });
  });
});
