/**
 * RedisStore: the store contract against a real redis-server (one per file, a fresh key
 * prefix per test), plus what only the Redis store promises — cross-store notification
 * through pub/sub, key prefixes, TTLs on a session's keys, names that need escaping.
 * Outages (a frozen or killed Redis): redis-outage.test.ts.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RedisServer, redisSkipReason, startRedis } from "../../bench/lib/redis-server.ts";
import { RedisStore, type RedisStoreOptions } from "../../src/store/redis.ts";
import { parseRedisUrl } from "../../src/store/redis-url.ts";
import { storeContract } from "./contract.ts";
import {
  commit,
  committed,
  held,
  publish,
  push,
  record,
  recordChanges,
  sessionsIn,
  settle,
  text,
  topicsIn,
  waitFor,
} from "./contract-helpers.ts";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const writer = fileURLToPath(new URL("./store-writer.ts", import.meta.url));

/** Runs test/store/store-writer.ts; resolves with its exit code and output. */
function runWriter(url: string, name: string, sessions: number, commits: number) {
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", writer, url, name, String(sessions), String(commits)],
      { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("close", (code) => resolve({ code, out, err }));
  });
}

let server: RedisServer | undefined;
let admin: Redis | undefined;
let n = 0;

beforeAll(async () => {
  if (redisSkipReason) return;
  server = await startRedis();
  admin = new Redis(server.port, "127.0.0.1", { lazyConnect: true });
  await admin.connect();
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

/** A store on the shared server under a prefix no other test uses (unless given). */
async function open(opts: RedisStoreOptions = {}): Promise<RedisStore> {
  const store = new RedisStore(parseRedisUrl(server!.url), { prefix: `t${++n}:`, ...opts });
  await store.ready();
  return store;
}

describe.skipIf(redisSkipReason !== undefined)("redis", () => {
  storeContract("redis", async () => {
    const store = await open();
    return { store, cleanup: () => store.close() };
  });

  describe("RedisStore", () => {
    const stores: RedisStore[] = [];
    const track = async (opts: RedisStoreOptions = {}) => {
      const s = await open(opts);
      stores.push(s);
      return s;
    };
    const closeAll = async () => {
      for (const s of stores.splice(0)) await s.close();
    };
    afterEach(closeAll);

    it("two stores on one Redis see each other's commits through watch, without polling", async () => {
      const a = await track({ prefix: "shared1:" });
      const b = await track({ prefix: "shared1:" });
      const e = await held(a, "s1");
      await b.createSession(record("s2"));
      const w = recordChanges(b);
      // The subscription is confirmed with an { kind: "any" } (re-read whatever came before).
      await waitFor(() => w.changes.some((c) => c.kind === "any"), 5000, "b to subscribe");
      const before = w.changes.length;
      await committed(a, "s1", e, 1, [push("s2", "hi"), publish("news", "x")]);
      await waitFor(() => sessionsIn(w.changes).includes("s2"), 5000, "b to hear about s2's push");
      await waitFor(() => topicsIn(w.changes).includes("news"), 5000, "b to hear about the topic");
      expect(w.changes.slice(before).filter((c) => c.kind === "any")).toEqual([]);
      // b delivers to its own session: a hears about it.
      const eb = (await b.claim("s2", "n2", Date.now()))!.epoch;
      await committed(b, "s2", eb, 1, [{ kind: "subscribe", session: "s2", topic: "news", after: 0 }]);
      const wa = recordChanges(a);
      await waitFor(() => wa.changes.some((c) => c.kind === "any"), 5000, "a to subscribe");
      expect((await b.deliver("s2", eb, 10)).length).toBe(1);
      await waitFor(() => sessionsIn(wa.changes).includes("s2"), 5000, "a to hear about the delivery");
      // A store does not hear its own announcements twice.
      await settle(100);
      expect(sessionsIn(wa.changes).filter((s) => s === "s2")).toHaveLength(1);
      // No polling: nothing is sent while nothing happens.
      const stats = async () => Number(/total_commands_processed:(\d+)/.exec(await admin!.info("stats"))![1]);
      const c0 = await stats();
      await settle(300);
      expect((await stats()) - c0).toBeLessThanOrEqual(2); // the two INFO calls themselves
    });

    it("a session created on one store is claimed by the other; the first is then fenced", async () => {
      const n1 = await track({ prefix: "fence:" });
      const n2 = await track({ prefix: "fence:" });
      const e1 = await held(n1, "s1");
      await committed(n1, "s1", e1, 1, [push("s1", "from n1")]);
      const claimed = await n2.claim("s1", "n2", Date.now());
      expect(claimed).toMatchObject({ owner: "n2", lastClientSeq: 1, lastPushSeq: 1, epoch: e1 + 1 });
      expect(await commit(n1, "s1", e1, 2, [push("s1", "stale")])).toEqual({ status: "fenced" });
      expect(await n1.deliver("s1", e1, 10)).toEqual([]);
      await n1.ackPushes("s1", e1, 1);
      await n1.release("s1", e1, 0);
      expect(await n2.getSession("s1")).toMatchObject({ owner: "n2", ackedPushSeq: 0 });
      expect(await admin!.smembers("fence:o:{n1}")).toEqual([]);
      expect(await admin!.smembers("fence:o:{n2}")).toEqual(["s1"]);
      await committed(n2, "s1", claimed!.epoch, 2, [push("s1", "from n2")]);
      expect((await n1.pushes("s1", 0, 10)).map((p) => text(p.payload))).toEqual(["from n1", "from n2"]);
    });

    it("concurrent commits from three processes all land, with consecutive offsets", async () => {
      const names = ["p1", "p2", "p3"];
      const sessions = 3;
      const commits = 100;
      const url = `${server!.url}?prefix=procs:`;
      const results = await Promise.all(names.map((name) => runWriter(url, name, sessions, commits)));
      for (const r of results) {
        expect(r.code, r.out + r.err).toBe(0);
        expect(JSON.parse(r.out.trim())).toEqual({ done: true, commits: sessions * commits });
      }
      const store = await track({ prefix: "procs:" });
      const total = names.length * sessions * commits;
      expect(await store.topicHead("shared")).toBe(total);
      const entries = await store.readTopic("shared", 0, total + 10);
      expect(entries.map((e) => e.offset)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(new Set(entries.map((e) => text(e.payload))).size).toBe(total);
      for (const name of names) {
        for (let i = 0; i < sessions; i++) {
          const id = `${name}-${i}`;
          expect(await store.getSession(id)).toMatchObject({ lastClientSeq: commits, lastPushSeq: commits });
          expect((await store.pushes(id, 0, commits + 1)).map((p) => p.seq)).toEqual(
            Array.from({ length: commits }, (_, k) => k + 1),
          );
        }
      }
    }, 60_000);

    it("a key prefix isolates clusters sharing one Redis", async () => {
      const one = await track({ prefix: "clusterA:" });
      const two = await track({ prefix: "clusterB:" });
      const e = await held(one, "s1");
      await committed(one, "s1", e, 1, [publish("t", "x")]);
      const w = recordChanges(two);
      await settle(50);
      await committed(one, "s1", e, 2, [publish("t", "y")]);
      await settle(100);
      expect(await two.getSession("s1")).toBeUndefined();
      expect(await two.topicHead("t")).toBe(0);
      expect(topicsIn(w.changes)).toEqual([]);
      await held(two, "s1"); // the same id in the other cluster is another session
      expect((await one.getSession("s1"))?.lastClientSeq).toBe(2);
      const keys = await admin!.keys("clusterA:*");
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.every((k) => k.startsWith("clusterA:"))).toBe(true);
    });

    it("a session's keys expire in Redis some time after the session does", async () => {
      const store = await track({ prefix: "ttl:", reclaimAfterMs: 60_000 });
      const e = await held(store, "s1");
      await committed(store, "s1", e, 1, [
        push("s1", "p"),
        { kind: "subscribe", session: "s1", topic: "t", after: 0 },
        publish("t", "x"),
      ]);
      const expiresAt = (await store.getSession("s1"))!.expiresAt!;
      const keys = ["ttl:s:{s1}", "ttl:s:{s1}:r", "ttl:s:{s1}:p", "ttl:s:{s1}:sub"];
      for (const k of keys) {
        const at = await admin!.pexpiretime(k);
        expect(at, k).toBeGreaterThanOrEqual(expiresAt + 60_000 - 5);
        expect(at, k).toBeLessThanOrEqual(expiresAt + 60_000 + 5);
      }
      // Released: the keys expire relative to the new expiry (by Redis's clock at the earliest).
      await store.release("s1", e, Date.now() + 1000);
      for (const k of keys) {
        const left = await admin!.pttl(k);
        expect(left, k).toBeGreaterThan(55_000);
        expect(left, k).toBeLessThanOrEqual(61_000);
      }
      // A session that never expires keeps its keys.
      await store.createSession(record("forever"));
      expect(await admin!.pttl("ttl:s:{forever}")).toBe(-1);
      // Topics belong to no session and never expire.
      expect(await admin!.pttl("ttl:t:{t}:head")).toBe(-1);
    });

    it("Redis reclaiming an expired session's keys by itself: sweep still reports it", async () => {
      const store = await track({ prefix: "reclaim:", reclaimAfterMs: 100 });
      const e = await held(store, "s1");
      await store.release("s1", e, Date.now() - 1000);
      await new Promise((r) => setTimeout(r, 250));
      expect(await admin!.exists("reclaim:s:{s1}")).toBe(0);
      expect(await store.sweep(Date.now())).toEqual(["s1"]);
      expect(await admin!.zcard("reclaim:expiry")).toBe(0);
    });

    it("names with braces, percent signs and non-ASCII characters get keys of their own", async () => {
      const store = await track();
      const ids = ["a{b}c", "a%7Bb%7Dc", "}x{", "ünï", "a:b"];
      for (const id of ids) await store.createSession(record(id));
      const e = await held(store, "main");
      await committed(
        store,
        "main",
        e,
        1,
        ids.flatMap((id) => [push(id, `to ${id}`), publish(`topic ${id}`, id)]),
      );
      for (const id of ids) {
        expect((await store.pushes(id, 0, 10)).map((p) => text(p.payload))).toEqual([`to ${id}`]);
        expect((await store.readTopic(`topic ${id}`, 0, 10)).map((x) => text(x.payload))).toEqual([id]);
      }
      expect(await admin!.keys(`${store.description.match(/prefix (\S+)\)/)![1]}s:{a%7Bb%7Dc}`)).toHaveLength(
        1,
      );
    });

    it("renew and sweep work through more sessions than one script batch", async () => {
      const store = await track();
      const ids = Array.from({ length: 1200 }, (_, i) => `s${i}`);
      await Promise.all(ids.map((id) => store.createSession(record(id, { ttl: 1000 }))));
      await Promise.all(ids.map((id) => store.claim(id, "n1", 0)));
      expect(await store.renew("n1", 10_000)).toBe(1200);
      expect(await store.sweep(5_000)).toEqual([]);
      expect((await store.sweep(10_000 + 1000 + 30_001)).length).toBe(1200);
    });

    it("finds the master through Sentinel (redis+sentinel://)", async () => {
      const sentinel = await startRedis({ master: server!, name: "ll-master" });
      try {
        const url = `redis+sentinel://127.0.0.1:${sentinel.port}/ll-master/0?prefix=sentinel:`;
        const store = new RedisStore(parseRedisUrl(url));
        stores.push(store);
        await store.ready();
        expect(store.description).toBe(
          `redis redis+sentinel://127.0.0.1:${sentinel.port}/ll-master/0 (prefix sentinel:)`,
        );
        const e = await held(store, "s1");
        await committed(store, "s1", e, 1, [publish("t", "x")]);
        expect(await admin!.get("sentinel:t:{t}:head")).toBe("1"); // written on the master
        await store.close();
      } finally {
        await sentinel.stop();
      }
    });

    it("describes itself without the password", async () => {
      const store = new RedisStore(parseRedisUrl("redis://:s3cret@127.0.0.1:1/2?prefix=x:"), {});
      expect(store.description).toBe("redis redis://:***@127.0.0.1:1/2 (prefix x:)");
      await store.close();
    });
  });
});
