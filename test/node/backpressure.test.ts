import { afterEach, describe, expect, it } from "vitest";
import type { App } from "../../src/node/app.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { TestClient, until } from "../support/node-client.ts";

/**
 * Per-connection backpressure (a client that sends faster than the handler runs fills its
 * own buffers, not the node's queue), and handlers that throw: ERROR LL_APP, the message
 * counts as processed with an empty reply, and the session carries on.
 */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function startNode(app: App, limits: Record<string, number> = {}) {
  const node = new LifelineNode({ id: "bp", port: 0, store: new MemoryStore(), app, limits });
  await node.start();
  cleanups.push(() => node.stop());
  return node;
}

async function client(address: string): Promise<TestClient> {
  const c = await TestClient.connect(address);
  cleanups.push(() => {
    if (c.conn.isOpen) c.conn.destroy();
  });
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("backpressure", () => {
  it("a client sending 500 messages at once never queues more than maxQueue on the node", async () => {
    const maxQueue = 16;
    const margin = 2;
    let node!: LifelineNode;
    let peak = 0;
    const observe = () => {
      peak = Math.max(peak, node.stats().queue);
    };
    const slow: App = {
      name: "slow",
      handle: async (payload) => {
        observe();
        await sleep(20);
        return payload;
      },
    };
    node = await startNode(slow, { maxQueue });
    // Also sample between handler calls, on timers.
    const sampler = setInterval(observe, 2);
    cleanups.push(() => clearInterval(sampler));

    const c = await client(node.address);
    const n = 500;
    const replies = await Promise.all(Array.from({ length: n }, (_, i) => c.send(`m${i}`)));
    clearInterval(sampler);
    observe();

    // Every message acknowledged, with its own reply, in order.
    expect(replies.map((r) => r?.toString())).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
    const acks = c.messages.filter((m) => m.type === "ack");
    const upTos = acks.map((m) => (m.type === "ack" ? m.upTo : 0));
    expect(upTos).toEqual([...upTos].sort((x, y) => x - y));
    expect(new Set(upTos).size).toBe(upTos.length);
    expect(upTos.at(-1)).toBe(n);
    const replySeqs = acks.flatMap((m) => (m.type === "ack" ? m.replies.map((r) => r.seq) : []));
    expect(replySeqs).toEqual(Array.from({ length: n }, (_, i) => i + 1));

    expect(peak, `peak queue ${peak} with maxQueue ${maxQueue}`).toBeLessThanOrEqual(maxQueue + margin);
    expect(peak).toBeGreaterThan(0);
    expect(node.stats().queue).toBe(0);
    expect(c.errors).toEqual([]);
  }, 120_000);

  it("a handler that throws gets ERROR LL_APP with its seq, counts as processed, and the session goes on", async () => {
    const runs = new Map<string, number>();
    const app: App = {
      name: "fragile",
      handle: async (payload, ctx) => {
        const text = Buffer.from(payload).toString();
        runs.set(text, (runs.get(text) ?? 0) + 1);
        if (text === "throw") {
          ctx.push("an effect of a failed message");
          throw new Error("boom");
        }
        if (text === "reject") {
          await sleep(5);
          throw "not an Error"; // a bare value, not an Error
        }
        return `ok:${text}`;
      },
    };
    const node = await startNode(app);
    const c = await client(node.address);
    expect((await c.send("a"))?.toString()).toBe("ok:a");

    const thrown = await c.send("throw");
    expect(thrown).toBeDefined();
    expect(thrown!.length).toBe(0); // the empty reply
    expect(c.errors).toEqual([{ type: "error", code: "LL_APP", message: "boom", fatal: false, seq: 2 }]);
    expect(c.closed).toBe(false);

    const rejected = await c.send("reject");
    expect(rejected?.length).toBe(0);
    expect(c.errors[1]).toMatchObject({ code: "LL_APP", fatal: false, seq: 3, message: "not an Error" });

    // The session goes on.
    expect((await c.send("b"))?.toString()).toBe("ok:b");

    // Resent: the stored empty reply, no new run, no new ERROR.
    const mark = c.messages.length;
    await c.sendAs(2, "throw");
    await until(
      () => c.messages.slice(mark).some((m) => m.type === "ack" && m.replies.some((r) => r.seq === 2)),
      10_000,
      "the stored reply of message 2",
    );
    const again = c.messages
      .slice(mark)
      .flatMap((m) => (m.type === "ack" ? m.replies.filter((r) => r.seq === 2) : []));
    expect(again.map((r) => r.payload.length)).toEqual([0]);
    // And after a reconnect.
    await c.resume(node.address);
    expect(c.conn.welcome).toMatchObject({ resumed: true, lastClientSeq: 4 });
    const mark2 = c.messages.length;
    void c.sendAs(3, "reject");
    await until(
      () => c.messages.slice(mark2).some((m) => m.type === "ack" && m.replies.some((r) => r.seq === 3)),
      10_000,
      "the stored reply of message 3",
    );
    expect((await c.send("c"))?.toString()).toBe("ok:c");

    expect(Object.fromEntries(runs)).toEqual({ a: 1, throw: 1, reject: 1, b: 1, c: 1 });
    expect(c.errors).toHaveLength(2);
    // The failed message's effects were dropped: no push reached the session.
    expect(c.pushes).toEqual([]);
    expect(node.stats().queue).toBe(0);
  });
});
