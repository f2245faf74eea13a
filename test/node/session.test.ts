import { afterEach, describe, expect, it } from "vitest";
import type { App } from "../../src/node/app.ts";
import { echoApp } from "../../src/node/apps/echo.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { Store } from "../../src/store/types.ts";
import { TestClient, until } from "../support/node-client.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function startNode(opts: { id?: string; store?: Store; app?: App; sessionTtl?: number } = {}) {
  const store = opts.store ?? new MemoryStore();
  const node = new LifelineNode({
    id: opts.id ?? "n1",
    port: 0,
    store,
    app: opts.app ?? echoApp,
    ...(opts.sessionTtl !== undefined ? { sessionTtl: opts.sessionTtl } : {}),
  });
  await node.start();
  cleanups.push(() => node.stop());
  return { node, store };
}

async function client(address: string): Promise<TestClient> {
  const c = await TestClient.connect(address);
  cleanups.push(async () => c.close());
  return c;
}

describe("node sessions", () => {
  it("echoes, acknowledging each message with its reply, in order", async () => {
    const { node } = await startNode();
    const c = await client(node.address);
    expect(c.conn.welcome).toMatchObject({ nodeId: "n1", resumed: false, lastClientSeq: 0, version: 1 });
    expect(c.session.token.length).toBeGreaterThanOrEqual(22); // 128 bits, base64url
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => c.send(`m${i}`)));
    expect(replies.map((r) => r?.toString())).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
  });

  it("runs the handler once per message: a resent message gets the stored reply", async () => {
    let runs = 0;
    const app: App = { name: "count", handle: (p) => `${++runs}:${Buffer.from(p).toString()}` };
    const { node } = await startNode({ app });
    const c = await client(node.address);
    expect((await c.send("a"))?.toString()).toBe("1:a");
    expect((await c.send("b"))?.toString()).toBe("2:b");
    expect((await c.sendAs(1, "a"))?.toString()).toBe("1:a"); // resend: same reply, not run
    expect(runs).toBe(2);
    // after a reconnect too
    await c.resume(node.address);
    expect(c.conn.welcome).toMatchObject({ resumed: true, lastClientSeq: 2 });
    expect((await c.sendAs(2, "b"))?.toString()).toBe("2:b");
    expect((await c.send("c"))?.toString()).toBe("3:c");
    expect(runs).toBe(3);
  });

  it("refuses a message that skips ahead", async () => {
    const { node } = await startNode();
    const c = await client(node.address);
    void c.sendAs(5, "x");
    await until(() => c.closed);
    expect(c.errors[0]).toMatchObject({ code: "LL_SEQUENCE", fatal: true });
  });

  it("delivers pushes in order, resends unacknowledged ones after a resume, to this or another session", async () => {
    const app: App = {
      name: "pusher",
      handle: (p, ctx) => {
        const [to, n] = Buffer.from(p).toString().split(":");
        for (let i = 1; i <= Number(n); i++) ctx.push(`push-${i}`, to || undefined);
        return "ok";
      },
    };
    const { node } = await startNode({ app });
    const a = await client(node.address);
    const b = await client(node.address);
    a.autoAckPushes = false;
    await a.send(":5");
    await until(() => a.pushes.length === 5);
    expect(a.pushes.map((p) => p.payload.toString())).toEqual([
      "push-1",
      "push-2",
      "push-3",
      "push-4",
      "push-5",
    ]);
    a.ackPushes(2);
    // resume claiming only push 3: pushes 4 and 5 come again, in order
    a.lastPushSeq = 3;
    a.pushes.length = 0;
    await a.resume(node.address);
    await until(() => a.pushes.length === 2);
    expect(a.pushes.map((p) => [p.seq, p.payload.toString()])).toEqual([
      [4, "push-4"],
      [5, "push-5"],
    ]);
    // a push to another session
    await a.send(`${b.session.id}:1`);
    await until(() => b.pushes.length === 1);
    expect(b.pushes[0]!.payload.toString()).toBe("push-1");
  });

  it("a wrong resume token is refused and does not disturb the session", async () => {
    const { node } = await startNode();
    const c = await client(node.address);
    await c.send("x");
    await expect(
      TestClient.connect(node.address, { session: { id: c.session.id, token: "guess" } }),
    ).rejects.toMatchObject({
      code: "LL_SESSION_TOKEN",
    });
    expect((await c.send("still here"))?.toString()).toBe("still here");
  });

  it("an expired or unknown session gets a new one (resumed: false)", async () => {
    const { node } = await startNode({ sessionTtl: 50 });
    const c = await client(node.address);
    await c.send("x");
    const old = c.session.id;
    c.conn.destroy();
    await new Promise((r) => setTimeout(r, 150));
    await c.resume(node.address);
    expect(c.conn.welcome.resumed).toBe(false);
    expect(c.session.id).not.toBe(old);
  });

  it("a second connection resuming the session takes it over", async () => {
    const { node } = await startNode();
    const c = await client(node.address);
    await c.send("x");
    const thief = await client(node.address);
    thief.conn.destroy();
    await thief.open(node.address, { session: c.session });
    await until(() => c.closed);
    expect(c.errors[0]).toMatchObject({ code: "LL_SESSION_MOVED" });
    thief.nextSeq = 2;
    expect((await thief.send("y"))?.toString()).toBe("y");
  });

  it("sends heartbeats with load to a connection that asks, and a topology", async () => {
    const { node } = await startNode();
    const c = await client(node.address);
    const m = await TestClient.connect(node.address, { role: "monitor", heartbeat: 100 });
    cleanups.push(async () => m.close());
    await until(() => m.messages.filter((x) => x.type === "heartbeat").length >= 3);
    const hb = m.messages.find((x) => x.type === "heartbeat");
    expect(hb).toMatchObject({ type: "heartbeat", state: "healthy" });
    expect(hb?.type === "heartbeat" && hb.load.connections).toBeGreaterThanOrEqual(2);
    expect(m.conn.welcome.heartbeat).toBe(100);
    expect(c.topology?.nodes[0]).toMatchObject({ id: "n1", address: node.address, state: "healthy" });
    expect(c.messages.filter((x) => x.type === "heartbeat")).toHaveLength(0);
  });
});
