import { afterEach, describe, expect, it } from "vitest";
import { createClient, type LifelineClient } from "../../src/client/client.ts";
import type { ClientOptions } from "../../src/client/options.ts";
import { pubsubApp } from "../../src/node/apps/pubsub.ts";
import { TestCluster } from "../support/cluster.ts";
import { until } from "../support/node-client.ts";
import { faultyProxy } from "../support/proxy.ts";
import { closedPort, tcpServer } from "../support/servers.ts";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function cluster(n: number, opts: Parameters<typeof TestCluster.start>[1] = {}) {
  const c = await TestCluster.start(n, opts);
  cleanups.push(() => c.close());
  return c;
}

function client(opts: ClientOptions): LifelineClient {
  const c = createClient(opts);
  cleanups.push(() => c.close({ timeout: 0 }));
  return c;
}

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");

describe("failover client", () => {
  it("sends, gets replies, and reports its status", async () => {
    const c3 = await cluster(3);
    const c = client({ servers: c3.addresses });
    await c.connect();
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => c.send(`m${i}`)));
    expect(replies.map(text)).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    const s = c.status();
    expect(s).toMatchObject({ state: "connected", queue: { unsent: 0, inflight: 0, bytes: 0 } });
    expect(s.counters).toMatchObject({ sent: 100, acknowledged: 100, connects: 1, failovers: 0 });
    expect(c3.addresses).toContain(s.address);
    expect(s.sessionId).toMatch(/-/);
  });

  it("fails over when its node stops, resumes the session, and loses nothing", async () => {
    const c3 = await cluster(3);
    const c = client({ servers: c3.addresses });
    const events: string[] = [];
    for (const e of ["connected", "disconnected", "failover", "resumed"] as const)
      c.on(e, () => events.push(e));
    await c.connect();
    const first = c.status().node!;
    const session = c.status().sessionId;
    const sending = Array.from({ length: 500 }, (_, i) => c.send(`m${i}`));
    await c3.stop(first);
    const replies = await Promise.all(sending);
    expect(replies.map(text)).toEqual(Array.from({ length: 500 }, (_, i) => `m${i}`));
    expect(c.status().node).not.toBe(first);
    expect(c.status().sessionId).toBe(session);
    expect(events).toEqual(["connected", "disconnected", "connected", "resumed", "failover"]);
  });

  it("moves on GOAWAY before the node closes, without an error", async () => {
    const c3 = await cluster(2, { node: { drainDeadline: 3000 } });
    const c = client({ servers: c3.addresses });
    await c.connect();
    const first = c.status().node!;
    let goaway: unknown;
    let disconnectError: unknown = "none";
    c.on("goaway", (g) => {
      goaway = g;
    });
    c.on("disconnected", (d) => {
      disconnectError = d.error;
    });
    const draining = c3.byId(first).drain("test");
    await until(() => c.status().state === "connected" && c.status().node !== first, 5000, "moved");
    expect(goaway).toMatchObject({ node: first });
    expect((goaway as { deadline: number }).deadline).toBeGreaterThan(2000);
    expect(disconnectError).toBeUndefined();
    expect(text(await c.send("after"))).toBe("after");
    await draining; // the drain ends early: its only client has left
  });

  it("detects a frozen node from the silence and fails over within deadAfter", async () => {
    const c2 = await cluster(2);
    const proxy = await faultyProxy(c2.nodes[0]!.address);
    cleanups.push(() => proxy.close());
    const c = client({
      servers: [proxy.address, c2.nodes[1]!.address],
      heartbeat: 100,
      deadAfter: 600,
      random: () => 0.5, // equal weights, equal draws: the configured order
      topology: false, // the nodes advertise their own addresses, not the proxy's
    });
    await c.connect();
    expect(c.status().address).toBe(proxy.address);
    const frozenAt = Date.now();
    proxy.setMode("freeze");
    const reply = c.send("through the freeze");
    await until(() => c.status().node === "n2", 5000, "failover to n2");
    expect(Date.now() - frozenAt).toBeLessThan(3000);
    expect(c.status().lastError?.code).toBe("LL_TIMEOUT");
    expect(text(await reply)).toBe("through the freeze");
  });

  it("races a silent server: connects to a live one after raceDelay, not after the timeout", async () => {
    const silent = await tcpServer(); // accepts, never answers
    cleanups.push(() => silent.close());
    const c1 = await cluster(1);
    const c = client({ servers: [silent.address, c1.addresses[0]!], raceDelay: 100, random: () => 0.99 });
    const t0 = Date.now();
    await c.connect();
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(c.status().node).toBe("n1");
  });

  it("classic strategy waits out the whole timeout of a silent first server", async () => {
    const silent = await tcpServer();
    cleanups.push(() => silent.close());
    const c1 = await cluster(1);
    const c = client({
      servers: [silent.address, c1.addresses[0]!],
      strategy: "classic",
      connectTimeout: 800,
    });
    const t0 = Date.now();
    await c.connect();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(750);
    expect(c.status().node).toBe("n1");
  });

  it("outbox overflow (reject): the sender is told LL_OUTBOX_FULL", async () => {
    const port = await closedPort();
    const c = client({ servers: [`127.0.0.1:${port}`], outbox: { maxMessages: 3 } });
    void c.connect().catch(() => {});
    const held = [c.send("a"), c.send("b"), c.send("c")];
    for (const p of held) p.catch(() => {});
    await expect(c.send("d")).rejects.toMatchObject({ code: "LL_OUTBOX_FULL" });
    expect(c.status().queue.unsent).toBe(3);
  });

  it("outbox overflow (drop-oldest): the dropped message's sender is told, and an event names it", async () => {
    const port = await closedPort();
    const c = client({ servers: [`127.0.0.1:${port}`], outbox: { maxMessages: 2, overflow: "drop-oldest" } });
    void c.connect().catch(() => {});
    const dropped: string[] = [];
    c.on("dropped", (d) => dropped.push(text(d.payload)));
    const a = c.send("a");
    const b = c.send("b");
    b.catch(() => {});
    const cc = c.send("c");
    cc.catch(() => {});
    await expect(a).rejects.toMatchObject({ code: "LL_OUTBOX_DROPPED" });
    expect(dropped).toEqual(["a"]);
    expect(c.status().counters.dropped).toBe(1);
  });

  it("session expiry: session-lost names the unacknowledged messages and their senders are told", async () => {
    const c1 = await cluster(1, { node: { sessionTtl: 200 } });
    const proxy = await faultyProxy(c1.addresses[0]!);
    cleanups.push(() => proxy.close());
    const c = client({
      servers: [proxy.address],
      heartbeat: 100,
      deadAfter: 400,
      backoffCap: 200,
      topology: false,
    });
    await c.connect();
    const oldSession = c.status().sessionId;
    expect(text(await c.send("before"))).toBe("before");
    proxy.setMode("freeze");
    const stuck = c.send("stuck");
    stuck.catch(() => {});
    await until(() => c.status().queue.inflight === 1, 2000, "in flight");
    proxy.setMode("reset"); // the node sees the connection go: its session has 200 ms to come back
    let lost: { sessionId: string; unacknowledged: Uint8Array[] } | undefined;
    c.on("session-lost", (e) => {
      lost = e;
    });
    await new Promise((r) => setTimeout(r, 600));
    proxy.setMode("pass");
    await expect(stuck).rejects.toMatchObject({ code: "LL_SESSION_LOST" });
    expect(lost?.sessionId).toBe(oldSession);
    expect(lost?.unacknowledged.map(text)).toEqual(["stuck"]);
    await until(() => c.status().state === "connected", 5000, "reconnected");
    expect(c.status().sessionId).not.toBe(oldSession);
    expect(text(await c.send("after"))).toBe("after");
    expect(c.status().counters.lost).toBe(1);
  });

  it("learns the cluster from TOPOLOGY and fails over to a node it was not given", async () => {
    const c2 = await cluster(2);
    const c = client({ servers: [c2.nodes[0]!.address] });
    await c.connect();
    await new Promise((r) => setTimeout(r, 50)); // TOPOLOGY follows WELCOME
    await c3stop(c2, "n1");
    expect(text(await c.send("x"))).toBe("x");
    expect(c.status().node).toBe("n2");
  });

  it("pubsub: subscribe, receive entries with topic and offset, in order, across a failover", async () => {
    const c2 = await cluster(2, { app: pubsubApp });
    const sub = client({ servers: c2.addresses });
    const pub = client({ servers: c2.addresses });
    await sub.connect();
    await pub.connect();
    expect(await sub.subscribe("news")).toBe(0);
    const got: Array<{ topic?: string; offset?: number; data: string }> = [];
    const it = sub.messages();
    const reading = (async () => {
      for await (const m of it) {
        got.push({ topic: m.topic, offset: m.offset, data: text(m.payload) });
        if (got.length === 20) break;
      }
    })();
    for (let i = 1; i <= 10; i++) await pub.publish("news", `e${i}`);
    await until(() => got.length >= 10, 5000, "first 10");
    await c3stop(c2, sub.status().node!);
    for (let i = 11; i <= 20; i++) await pub.publish("news", `e${i}`);
    await reading;
    expect(got.map((g) => g.data)).toEqual(Array.from({ length: 20 }, (_, i) => `e${i + 1}`));
    expect(got.map((g) => g.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(got.every((g) => g.topic === "news")).toBe(true);
  });

  it("durable outbox: messages held at close are kept in the file and delivered by the next client", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "lifeline-outbox-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "client.db");
    const port = await closedPort();
    const a = createClient({ servers: [`127.0.0.1:${port}`], outbox: { path } });
    void a.connect().catch(() => {});
    const held = ["one", "two", "three"].map((m) => a.send(m));
    for (const h of held) h.catch(() => {});
    expect(await a.close({ timeout: 0 })).toEqual({ unsent: 3, unacknowledged: 0, kept: true });
    await expect(held[0]).rejects.toMatchObject({ code: "LL_CLOSED" });

    const c1 = await cluster(1);
    const b = client({ servers: c1.addresses, outbox: { path } });
    const replies: string[] = [];
    b.on("reply", (r) => replies.push(`${text(r.request)}=${text(r.payload)}`));
    await b.connect();
    await until(() => replies.length === 3, 5000, "recovered replies");
    expect(replies).toEqual(["one=one", "two=two", "three=three"]);
    const session = b.status().sessionId;
    await b.close();
    // A restart resumes the same session from the file.
    const c = client({ servers: c1.addresses, outbox: { path } });
    await c.connect();
    expect(c.status().sessionId).toBe(session);
  });

  it("close() flushes what is queued, then reports nothing left", async () => {
    const c1 = await cluster(1);
    const c = createClient({ servers: c1.addresses });
    await c.connect();
    const sending = Array.from({ length: 50 }, (_, i) => c.send(`m${i}`));
    const report = await c.close();
    expect(report).toEqual({ unsent: 0, unacknowledged: 0, kept: false });
    expect((await Promise.all(sending)).length).toBe(50);
    await expect(c.send("late")).rejects.toMatchObject({ code: "LL_CLOSED" });
  });
});

async function c3stop(c: TestCluster, id: string): Promise<void> {
  await c.stop(id);
}
