import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createClient, type LifelineClient } from "../../src/client/client.ts";
import type { Incoming } from "../../src/client/inbox.ts";
import type { ClientOptions } from "../../src/client/options.ts";
import type { App } from "../../src/node/app.ts";
import { pubsubApp } from "../../src/node/apps/pubsub.ts";
import { TestCluster } from "../support/cluster.ts";
import { until } from "../support/node-client.ts";
import { faultyProxy } from "../support/proxy.ts";
import { closedPort } from "../support/servers.ts";

/**
 * The durable outbox end to end, over real sockets with in-process nodes: what a client
 * holds when it closes is kept in its file, and the next client on that file delivers it,
 * resuming the same session when the cluster still has it.
 */

const dir = mkdtempSync(join(tmpdir(), "lifeline-durable-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(dir, `client-${++files}.db`);

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function cluster(n: number, opts: Parameters<typeof TestCluster.start>[1] = {}) {
  const c = await TestCluster.start(n, opts);
  cleanups.push(() => c.close());
  return c;
}

/** A client closed by the test's cleanup unless the test closes it first. */
function client(opts: ClientOptions): LifelineClient {
  const c = createClient(opts);
  cleanups.push(() => c.close({ timeout: 0 }));
  return c;
}

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An echo app that counts how often its handler ran for each payload (exactly once?). */
function countingApp() {
  const runs = new Map<string, number>();
  const app: App = {
    name: "counting-echo",
    handle(payload) {
      const k = text(payload);
      runs.set(k, (runs.get(k) ?? 0) + 1);
      return payload;
    },
  };
  return { app, runs };
}

describe("durable outbox", () => {
  it("messages sent while no server is reachable survive close() and are delivered by the next client (reply events)", async () => {
    const path = freshPath();
    const port = await closedPort();
    const a = createClient({ servers: [`127.0.0.1:${port}`], outbox: { path }, backoffCap: 200 });
    const connecting = a.connect().catch((e: { code: string }) => e.code);
    const held = ["one", "two", "three"].map((m) => a.send(m));
    const outcomes = held.map((p) => p.catch((e: { code: string }) => e.code));
    expect(a.status().queue).toEqual({ unsent: 3, inflight: 0, bytes: 11 });
    await sleep(50); // a few failed dials
    expect(a.status().state).toBe("reconnecting");
    expect(await a.close({ timeout: 0 })).toEqual({ unsent: 3, unacknowledged: 0, kept: true });
    expect(await Promise.all(outcomes)).toEqual(["LL_CLOSED", "LL_CLOSED", "LL_CLOSED"]);
    expect(await connecting).toBe("LL_CLOSED");

    const { app, runs } = countingApp();
    const c1 = await cluster(2, { app });
    const b = client({ servers: c1.addresses, outbox: { path } });
    expect(b.status().queue).toEqual({ unsent: 3, inflight: 0, bytes: 11 }); // restored before connecting
    const replies: Array<[number, string, string]> = [];
    b.on("reply", (r) => replies.push([r.seq, text(r.request), text(r.payload)]));
    await b.connect();
    await until(() => replies.length === 3, 5000, "recovered replies");
    expect(replies).toEqual([
      [1, "one", "one"],
      [2, "two", "two"],
      [3, "three", "three"],
    ]);
    expect([...runs.entries()]).toEqual([
      ["one", 1],
      ["two", 1],
      ["three", 1],
    ]);
    // New messages carry on after the recovered ones, and resolve for their caller.
    expect(text(await b.send("four"))).toBe("four");
    expect(b.status().queue).toEqual({ unsent: 0, inflight: 0, bytes: 0 });
    expect(await b.close()).toEqual({ unsent: 0, unacknowledged: 0, kept: true });

    // Nothing is left in the file for a third client.
    const c = client({ servers: c1.addresses, outbox: { path } });
    expect(c.status().queue).toEqual({ unsent: 0, inflight: 0, bytes: 0 });
  });

  it("in-flight messages at close() are kept with their seqs and resent in the same session: run once each", async () => {
    const path = freshPath();
    const { app, runs } = countingApp();
    const c1 = await cluster(1, { app });
    const proxy = await faultyProxy(c1.addresses[0]!);
    cleanups.push(() => proxy.close());
    const a = createClient({ servers: [proxy.address], outbox: { path }, topology: false });
    await a.connect();
    expect(text(await a.send("before"))).toBe("before");
    const session = a.status().sessionId;
    proxy.setMode("freeze"); // nothing gets through either way
    const stuck = ["x", "y"].map((m) => a.send(m).catch((e: { code: string }) => e.code));
    await until(() => a.status().queue.inflight === 2, 2000, "in flight");
    expect(await a.close({ timeout: 0 })).toEqual({ unsent: 0, unacknowledged: 2, kept: true });
    expect(await Promise.all(stuck)).toEqual(["LL_CLOSED", "LL_CLOSED"]);
    proxy.setMode("reset"); // the node sees the old connection go

    const b = client({ servers: c1.addresses, outbox: { path } });
    const replies: string[] = [];
    const resumed: Array<{ sessionId: string; resent: number }> = [];
    b.on("reply", (r) => replies.push(`${r.seq}:${text(r.payload)}`));
    b.on("resumed", (r) => resumed.push(r));
    await b.connect();
    await until(() => replies.length === 2, 5000, "replies");
    expect(b.status().sessionId).toBe(session);
    expect(resumed).toEqual([expect.objectContaining({ sessionId: session, resent: 2 })]);
    expect(replies).toEqual(["2:x", "3:y"]); // "before" was 1: the same seqs as before the close
    expect(runs.get("x")).toBe(1);
    expect(runs.get("y")).toBe(1);
    expect(text(await b.send("after"))).toBe("after");
  });

  // Not "at once": better-sqlite3's 5 s busy timeout blocks the process first (it.fails in
  // outbox.test.ts).
  it("a second client on the same file fails with LL_OUTBOX_FILE", async () => {
    const path = freshPath();
    const port = await closedPort();
    const a = client({ servers: [`127.0.0.1:${port}`], outbox: { path } });
    a.send("held").catch(() => {});
    expect(() => createClient({ servers: [`127.0.0.1:${port}`], outbox: { path } })).toThrow(
      expect.objectContaining({ code: "LL_OUTBOX_FILE" }),
    );
    expect(await a.close({ timeout: 0 })).toMatchObject({ unsent: 1, kept: true });
    // Once the first is closed the file opens again, with its message.
    const b = client({ servers: [`127.0.0.1:${port}`], outbox: { path } });
    expect(b.status().queue.unsent).toBe(1);
  });

  it("the session survives a restart: resumed with the same id, pushes not redelivered, topics still decoded", async () => {
    const path = freshPath();
    const c1 = await cluster(1, { app: pubsubApp });
    const pub = client({ servers: c1.addresses });
    await pub.connect();

    const a = createClient({ servers: c1.addresses, outbox: { path } });
    await a.connect();
    expect(a.status().sessionId).toBeDefined();
    const session = a.status().sessionId!;
    expect(await a.subscribe("news", 0)).toBe(0);
    const gotA: Incoming[] = [];
    a.on("message", (m) => gotA.push(m));
    for (let i = 1; i <= 3; i++) await pub.publish("news", `e${i}`);
    await until(() => gotA.length === 3, 5000, "first client's pushes");
    expect(gotA.map((m) => [m.seq, m.topic, m.offset, text(m.payload)])).toEqual([
      [1, "news", 1, "e1"],
      [2, "news", 2, "e2"],
      [3, "news", 3, "e3"],
    ]);
    expect(await a.close()).toEqual({ unsent: 0, unacknowledged: 0, kept: true });

    const b = client({ servers: c1.addresses, outbox: { path } });
    const gotB: Incoming[] = [];
    const connected: Array<{ resumed: boolean }> = [];
    const lost: unknown[] = [];
    b.on("message", (m) => gotB.push(m));
    b.on("connected", (c) => connected.push(c));
    b.on("session-lost", (l) => lost.push(l));
    await b.connect();
    expect(connected).toEqual([expect.objectContaining({ resumed: true })]);
    expect(b.status().sessionId).toBe(session);
    expect(lost).toEqual([]);
    await sleep(300);
    expect(gotB).toEqual([]); // e1..e3 are not delivered again
    await pub.publish("news", "e4");
    await until(() => gotB.length === 1, 5000, "the new push");
    expect(gotB.map((m) => [m.seq, m.topic, m.offset, text(m.payload)])).toEqual([[4, "news", 4, "e4"]]);
    await sleep(100);
    expect(gotB).toHaveLength(1);
  });

  it("a restart after the session expired reports the kept in-flight messages as lost and delivers the unsent ones", async () => {
    const path = freshPath();
    const { app, runs } = countingApp();
    const c1 = await cluster(1, { app, node: { sessionTtl: 200 } });
    const proxy = await faultyProxy(c1.addresses[0]!);
    cleanups.push(() => proxy.close());
    const a = createClient({ servers: [proxy.address], outbox: { path }, topology: false, backoffCap: 100 });
    await a.connect();
    const oldSession = a.status().sessionId;
    proxy.setMode("freeze");
    const x = a.send("x").catch((e: { code: string }) => e.code);
    await until(() => a.status().queue.inflight === 1, 2000, "x in flight");
    proxy.setMode("reset"); // the connection goes; every reconnect is reset
    await until(() => a.status().state === "reconnecting", 2000, "disconnected");
    const y = a.send("y").catch((e: { code: string }) => e.code); // unsent: no connection
    expect(await a.close({ timeout: 0 })).toEqual({ unsent: 1, unacknowledged: 1, kept: true });
    expect([await x, await y]).toEqual(["LL_CLOSED", "LL_CLOSED"]);
    await sleep(500); // the session (TTL 200 ms) expires

    const b = client({ servers: c1.addresses, outbox: { path } });
    const lost: Array<{ sessionId: string; unacknowledged: Uint8Array[] }> = [];
    const replies: string[] = [];
    b.on("session-lost", (l) => lost.push(l));
    b.on("reply", (r) => replies.push(`${r.seq}:${text(r.request)}`));
    await b.connect();
    await until(() => replies.length === 1, 5000, "the unsent message's reply");
    expect(lost.map((l) => [l.sessionId, l.unacknowledged.map(text)])).toEqual([[oldSession, ["x"]]]);
    expect(b.status().sessionId).not.toBe(oldSession);
    expect(replies).toEqual(["1:y"]); // the first message of the new session
    expect(runs.get("x")).toBeUndefined();
    expect(b.status()).toMatchObject({ queue: { unsent: 0, inflight: 0 }, counters: { lost: 1 } });
  });
});
