/**
 * A node on a Redis store while Redis is away (frozen with SIGSTOP, then killed and
 * restarted): the node reports `degraded` with the reason, acknowledges nothing it could not
 * store, and turns healthy again when Redis returns; a failover client sending all along
 * gets every message acknowledged, each processed once.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RedisServer, redisSkipReason, startRedis } from "../../bench/lib/redis-server.ts";
import { createClient } from "../../src/client/client.ts";
import { pubsubApp } from "../../src/node/apps/pubsub.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { parseRedisUrl } from "../../src/store/redis-url.ts";
import { until } from "../support/node-client.ts";

describe.skipIf(redisSkipReason !== undefined)("a node whose Redis goes away", () => {
  let server: RedisServer;
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  beforeEach(async () => {
    server = await startRedis();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await server.stop();
  });

  const openStore = async () => {
    const store = new RedisStore(parseRedisUrl(server.url), {
      commandTimeoutMs: 300,
      connectTimeoutMs: 2000,
      maxReconnectDelayMs: 100,
    });
    await store.ready();
    cleanups.push(() => store.close());
    return store;
  };

  it("is degraded while Redis is frozen or dead, acknowledges nothing meanwhile, and no message is lost or run twice", async () => {
    const store = await openStore();
    const node = new LifelineNode({ id: "r1", port: 0, store, app: pubsubApp, storeCheckInterval: 50 });
    await node.start();
    cleanups.push(() => node.stop());
    const states: string[] = [];
    node.on("state", (s) => states.push(s));
    const client = createClient({ servers: [node.address], name: "redis-outage" });
    cleanups.push(() => client.close({ timeout: 0 }));
    await client.connect();

    const acked: number[] = [];
    const publish = (i: number) => {
      const p = client.publish("t", `m${i}`).then(() => {
        acked.push(i);
      });
      p.catch(() => {}); // awaited below; a failed test must not leave unhandled rejections
      return p;
    };
    const sends: Array<Promise<void>> = [];
    for (let i = 1; i <= 10; i++) sends.push(publish(i));
    await Promise.all(sends);

    // Frozen Redis: commands time out, the node says why it is degraded.
    server.pause();
    for (let i = 11; i <= 20; i++) sends.push(publish(i));
    await until(() => node.state === "degraded", 10_000, "degraded while Redis is frozen");
    expect(node.reason).toMatch(/^store unavailable: redis redis:\/\/127\.0\.0\.1:\d+/);
    const ackedWhileFrozen = acked.length;
    await new Promise((r) => setTimeout(r, 500));
    expect(acked.length).toBe(ackedWhileFrozen); // nothing acknowledged without Redis
    server.resume();
    await until(() => node.state === "healthy", 10_000, "healthy after SIGCONT");

    // Each message acknowledged and published once. (A commit whose reply timed out while
    // Redis was frozen may still have run when it thawed: the node could not know, cut the
    // connection, and the client's resend was answered from the stored reply — a duplicate,
    // not a second publish.)
    await Promise.all(sends);
    expect(acked.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const entries = await store.readTopic("t", 0, 100);
    expect(entries.map((e) => Buffer.from(e.payload).toString())).toEqual(
      Array.from({ length: 20 }, (_, i) => `m${i + 1}`),
    );

    // Dead Redis, restarted on the same port (without persistence: this part checks that the
    // node notices, waits and recovers).
    await server.kill();
    await until(() => node.state === "degraded", 10_000, "degraded while Redis is dead");
    await server.restart();
    await until(() => node.state === "healthy", 10_000, "healthy after the restart");
    expect(states).toEqual(["degraded", "healthy", "degraded", "healthy"]);
    expect(node.counters.storeOutages).toBe(2);
  }, 60_000);

  it("a topic written through a frozen-then-thawed Redis holds each message once, in order", async () => {
    const store = await openStore();
    const node = new LifelineNode({ id: "r2", port: 0, store, app: pubsubApp, storeCheckInterval: 50 });
    await node.start();
    cleanups.push(() => node.stop());
    const client = createClient({ servers: [node.address], name: "redis-freeze" });
    cleanups.push(() => client.close({ timeout: 0 }));
    await client.connect();
    const sends: Array<Promise<unknown>> = [];
    for (let i = 1; i <= 30; i++) {
      const p = client.publish("t", `m${i}`);
      p.catch(() => {}); // awaited below
      sends.push(p);
      if (i === 10) server.pause();
      if (i === 20) {
        await until(() => node.state === "degraded", 10_000, "degraded");
        server.resume();
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(sends);
    const entries = await store.readTopic("t", 0, 100);
    expect(entries.map((e) => Buffer.from(e.payload).toString())).toEqual(
      Array.from({ length: 30 }, (_, i) => `m${i + 1}`),
    );
  }, 60_000);
});
