import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pubsubApp } from "../../src/node/apps/pubsub.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { decodeDelivery } from "../../src/store/delivery.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { TestClient, until } from "../support/node-client.ts";

/**
 * The `pubsub` app on nodes sharing one SQLite file (each node with its own SqliteStore
 * connection, as separate processes have): its commands and replies, delivery of entries
 * as PUSHes in order, publishes appended once, cross-node delivery, subscriptions that
 * follow a session to another node, replays from an offset, and malformed commands.
 */
let dir: string;
let file: string;
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lifeline-pubsub-"));
  file = join(dir, "pubsub.db");
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
  rmSync(dir, { recursive: true, force: true });
});

async function startNode(id: string) {
  const store = new SqliteStore(file);
  const node = new LifelineNode({ id, port: 0, store, app: pubsubApp });
  await node.start();
  cleanups.push(async () => {
    await node.stop();
    await store.close();
  });
  return { node, store };
}

async function client(address: string): Promise<TestClient> {
  const c = await TestClient.connect(address);
  cleanups.push(() => {
    if (c.conn.isOpen) c.conn.destroy();
  });
  return c;
}

type Json = Record<string, unknown>;

/** Sends a command (an object, or raw text) and resolves with the parsed reply. */
async function cmd(c: TestClient, command: Json | string): Promise<Json> {
  const reply = await c.send(typeof command === "string" ? command : JSON.stringify(command));
  return JSON.parse(Buffer.from(reply ?? new Uint8Array(0)).toString("utf8")) as Json;
}

/** The client's pushes decoded as deliveries: [topic, offset, data]. */
function received(c: TestClient): Array<[string, number, string]> {
  return c.pushes.map((p) => {
    const d = decodeDelivery(p.payload);
    return [d.topic, d.offset, Buffer.from(d.payload).toString("utf8")];
  });
}

const entries = (topic: string, from: number, to: number, data = (o: number) => `m${o}`) =>
  Array.from({ length: to - from + 1 }, (_, i): [string, number, string] => [
    topic,
    from + i,
    data(from + i),
  ]);

describe("pubsub app", () => {
  it("publish, head, read, subscribe and unsubscribe answer as documented", async () => {
    const { node } = await startNode("n1");
    const c = await client(node.address);
    expect(await cmd(c, { op: "head", topic: "t" })).toEqual({ ok: true, head: 0 });
    expect(await cmd(c, { op: "read", topic: "t" })).toEqual({ ok: true, entries: [] });
    const before = Date.now();
    for (const data of ["one", "two", "three"]) {
      expect(await cmd(c, { op: "publish", topic: "t", data })).toEqual({ ok: true });
    }
    expect(
      await cmd(c, { op: "publish", topic: "t", data64: Buffer.from("four").toString("base64") }),
    ).toEqual({ ok: true });
    expect(await cmd(c, { op: "head", topic: "t" })).toEqual({ ok: true, head: 4 });
    expect(await cmd(c, { op: "head", topic: "other" })).toEqual({ ok: true, head: 0 });

    const all = (await cmd(c, { op: "read", topic: "t", after: 0 })) as {
      ok: boolean;
      entries: Array<{ offset: number; at: number; data: string }>;
    };
    expect(all.ok).toBe(true);
    expect(all.entries.map((e) => [e.offset, e.data])).toEqual([
      [1, "one"],
      [2, "two"],
      [3, "three"],
      [4, "four"],
    ]);
    for (const e of all.entries) {
      expect(e.at).toBeGreaterThanOrEqual(before - 1000);
      expect(e.at).toBeLessThanOrEqual(Date.now() + 1000);
    }
    const page = (await cmd(c, { op: "read", topic: "t", after: 1, limit: 2 })) as {
      entries: Array<{ offset: number; data: string }>;
    };
    expect(page.entries.map((e) => [e.offset, e.data])).toEqual([
      [2, "two"],
      [3, "three"],
    ]);
    expect(await cmd(c, { op: "read", topic: "t", after: 4 })).toEqual({ ok: true, entries: [] });

    expect(await cmd(c, { op: "subscribe", topic: "t" })).toEqual({ ok: true, head: 4 });
    expect(await cmd(c, { op: "unsubscribe", topic: "t" })).toEqual({ ok: true });
    // Subscribing "end" delivered nothing old; the subscription is gone again.
    expect(c.pushes).toHaveLength(0);
  });

  it("a subscriber receives the entries of its topics in order as PUSHes, byte for byte", async () => {
    const { node } = await startNode("n1");
    const sub = await client(node.address);
    const pub = await client(node.address);
    await cmd(pub, { op: "publish", topic: "t", data: "before the subscription" });
    expect(await cmd(sub, { op: "subscribe", topic: "t", after: "end" })).toEqual({ ok: true, head: 1 });

    const n = 50;
    const replies = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        pub.send(
          JSON.stringify({ op: "publish", topic: i % 5 === 4 ? "elsewhere" : "t", data: `m${i + 2}` }),
        ),
      ),
    );
    expect(replies.every((r) => r?.toString() === '{"ok":true}')).toBe(true);
    // Binary data goes base64 in data64 and arrives as the same bytes.
    const binary = Buffer.from([0, 255, 1, 254, 10, 13, 0x80]);
    await cmd(pub, { op: "publish", topic: "t", data64: binary.toString("base64") });

    const onT = Array.from({ length: n }, (_, i) => i).filter((i) => i % 5 !== 4);
    await until(() => sub.pushes.length === onT.length + 1, 10_000, "deliveries");
    const got = received(sub);
    expect(got.slice(0, -1)).toEqual(onT.map((i, k): [string, number, string] => ["t", k + 2, `m${i + 2}`]));
    const last = decodeDelivery(sub.pushes.at(-1)!.payload);
    expect(last.topic).toBe("t");
    expect(last.offset).toBe(onT.length + 2);
    expect(Buffer.from(last.payload).equals(binary)).toBe(true);
    // PUSH sequence numbers are consecutive from 1.
    expect(sub.pushes.map((p) => p.seq)).toEqual(Array.from({ length: onT.length + 1 }, (_, i) => i + 1));

    // After unsubscribing, entries of that topic stop; others still come (and would come
    // after any pending entry of `t`, which is delivered first).
    await cmd(sub, { op: "subscribe", topic: "u" });
    await cmd(sub, { op: "unsubscribe", topic: "t" });
    await cmd(pub, { op: "publish", topic: "t", data: "not for sub" });
    await cmd(pub, { op: "publish", topic: "u", data: "for sub" });
    await until(() => sub.pushes.length === onT.length + 2, 10_000, "the delivery on u");
    expect(received(sub).at(-1)).toEqual(["u", 1, "for sub"]);
  });

  it("a publish resent with the same sequence number is appended once", async () => {
    const { node } = await startNode("n1");
    const sub = await client(node.address);
    await cmd(sub, { op: "subscribe", topic: "t" });
    const c = await client(node.address);
    const publish = JSON.stringify({ op: "publish", topic: "t", data: "once" });
    const seq = c.nextSeq;
    expect((await c.send(publish))?.toString()).toBe('{"ok":true}');

    // Resent on the same connection, then after a reconnect (an ACK lost with the
    // connection): the stored reply each time, nothing appended.
    const mark = c.messages.length;
    await c.sendAs(seq, publish);
    await until(
      () => c.messages.slice(mark).some((m) => m.type === "ack" && m.replies.some((r) => r.seq === seq)),
      10_000,
      "the stored reply",
    );
    await c.resume(node.address);
    expect(c.conn.welcome).toMatchObject({ resumed: true, lastClientSeq: seq });
    const mark2 = c.messages.length;
    await c.sendAs(seq, publish);
    await until(
      () => c.messages.slice(mark2).some((m) => m.type === "ack" && m.replies.some((r) => r.seq === seq)),
      10_000,
      "the stored reply after the resume",
    );
    for (const m of c.messages.slice(mark)) {
      if (m.type !== "ack") continue;
      for (const r of m.replies)
        if (r.seq === seq) expect(Buffer.from(r.payload).toString()).toBe('{"ok":true}');
    }

    expect(await cmd(c, { op: "head", topic: "t" })).toEqual({ ok: true, head: 1 });
    expect(await cmd(c, { op: "publish", topic: "t", data: "twice" })).toEqual({ ok: true });
    expect(await cmd(c, { op: "head", topic: "t" })).toEqual({ ok: true, head: 2 });
    await until(() => sub.pushes.length === 2, 10_000, "deliveries");
    expect(received(sub)).toEqual([
      ["t", 1, "once"],
      ["t", 2, "twice"],
    ]);
  });

  it("two nodes sharing one SQLite file see each other's publishes", async () => {
    const a = await startNode("n1");
    const b = await startNode("n2");
    const subA = await client(a.node.address);
    const subB = await client(b.node.address);
    const pubA = await client(a.node.address);
    const pubB = await client(b.node.address);
    expect(await cmd(subA, { op: "subscribe", topic: "t" })).toEqual({ ok: true, head: 0 });
    expect(await cmd(subB, { op: "subscribe", topic: "t" })).toEqual({ ok: true, head: 0 });

    // Published on node 1, delivered on node 2 (and node 1).
    for (let i = 1; i <= 10; i++) await cmd(pubA, { op: "publish", topic: "t", data: `m${i}` });
    await until(() => subB.pushes.length === 10, 15_000, "node 1's publishes on node 2");
    expect(received(subB)).toEqual(entries("t", 1, 10));
    // Published on node 2, delivered on node 1; both publishers at once, one order.
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) =>
        pubB.send(JSON.stringify({ op: "publish", topic: "t", data: `b${i + 1}` })),
      ),
      ...Array.from({ length: 10 }, (_, i) =>
        pubA.send(JSON.stringify({ op: "publish", topic: "t", data: `a${i + 1}` })),
      ),
    ]);
    await until(() => subA.pushes.length === 30 && subB.pushes.length === 30, 15_000, "30 deliveries each");
    const gotA = received(subA);
    const gotB = received(subB);
    expect(gotA).toEqual(gotB);
    expect(gotA.map(([, offset]) => offset)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    // Each publisher's entries in its own order, each once.
    const data = gotA.map(([, , d]) => d);
    expect(data.filter((d) => d.startsWith("a"))).toEqual(Array.from({ length: 10 }, (_, i) => `a${i + 1}`));
    expect(data.filter((d) => d.startsWith("b"))).toEqual(Array.from({ length: 10 }, (_, i) => `b${i + 1}`));
    // Both nodes read the same topic.
    expect(await cmd(pubA, { op: "head", topic: "t" })).toEqual({ ok: true, head: 30 });
    expect(await cmd(pubB, { op: "head", topic: "t" })).toEqual({ ok: true, head: 30 });
  });

  it("a subscriber that resumes its session on the other node continues from its offset", async () => {
    const a = await startNode("n1");
    const b = await startNode("n2");
    const sub = await client(a.node.address);
    const pub = await client(a.node.address);
    await cmd(sub, { op: "subscribe", topic: "t" });
    const publish = (from: number, to: number) =>
      Promise.all(
        Array.from({ length: to - from + 1 }, (_, i) =>
          pub.send(JSON.stringify({ op: "publish", topic: "t", data: `m${from + i}` })),
        ),
      );

    await publish(1, 10);
    await until(() => sub.pushes.length === 10, 10_000, "the first 10");
    // Entries 11-15 arrive, but the client acknowledges (has processed) only up to 12.
    sub.autoAckPushes = false;
    await publish(11, 15);
    await until(() => sub.pushes.length === 15, 10_000, "entries 11-15");
    const seq12 = sub.pushes[11]!.seq;
    sub.ackPushes(seq12);
    sub.conn.destroy();
    await until(() => sub.closed, 5000, "the subscriber's close");
    // Published while the subscriber is away.
    await publish(16, 20);

    sub.pushes.splice(12);
    sub.lastPushSeq = seq12;
    sub.autoAckPushes = true;
    const mark = sub.messages.length;
    await sub.resume(b.node.address);
    expect(sub.conn.welcome).toMatchObject({ nodeId: "n2", resumed: true });
    // And published on node 1 after the subscriber moved to node 2.
    await publish(21, 25);
    await until(() => sub.pushes.length >= 25, 15_000, "entries 13-25 on node 2");
    // One more round trip on node 2, so that a late duplicate would be seen.
    expect(await cmd(sub, { op: "head", topic: "t" })).toEqual({ ok: true, head: 25 });
    expect(received(sub)).toEqual(entries("t", 1, 25));
    const resent = sub.messages.slice(mark).filter((m) => m.type === "push");
    expect(resent.map((m) => m.type === "push" && decodeDelivery(m.payload).offset)).toEqual(
      Array.from({ length: 13 }, (_, i) => 13 + i),
    );
  });

  it("subscribing with `after: N` replays the entries after N, then the new ones", async () => {
    const { node } = await startNode("n1");
    const pub = await client(node.address);
    for (let i = 1; i <= 10; i++) await cmd(pub, { op: "publish", topic: "r", data: `m${i}` });
    const sub = await client(node.address);
    expect(await cmd(sub, { op: "subscribe", topic: "r", after: 4 })).toEqual({ ok: true, head: 10 });
    await until(() => sub.pushes.length === 6, 10_000, "the replay");
    expect(received(sub)).toEqual(entries("r", 5, 10));
    await cmd(pub, { op: "publish", topic: "r", data: "m11" });
    await until(() => sub.pushes.length === 7, 10_000, "a new entry");
    expect(received(sub)).toEqual(entries("r", 5, 11));

    const all = await client(node.address);
    expect(await cmd(all, { op: "subscribe", topic: "r", after: 0 })).toEqual({ ok: true, head: 11 });
    await until(() => all.pushes.length === 11, 10_000, "the full replay");
    expect(received(all)).toEqual(entries("r", 1, 11));
  });

  it("malformed commands get {ok:false} and change nothing; the session goes on", async () => {
    const { node, store } = await startNode("n1");
    const c = await client(node.address);
    const bad: Array<Json | string> = [
      "not json",
      "",
      "[]",
      "42",
      "null",
      {},
      { op: "nope", topic: "t" },
      { op: "publish" },
      { op: "publish", topic: "" },
      { op: "publish", topic: "x".repeat(257) },
      { op: "publish", topic: 7, data: "x" },
      { op: "publish", topic: "t", data: 5 },
      { op: "subscribe", topic: "t", after: -1 },
      { op: "subscribe", topic: "t", after: 1.5 },
      { op: "subscribe", topic: "t", after: "start" },
      { op: "read", topic: "t", after: -3 },
      { op: "read", topic: "t", limit: 0 },
      { op: "read", topic: "t", limit: 1001 },
      { op: "head" },
    ];
    for (const command of bad) {
      const reply = await cmd(c, command);
      expect(reply, JSON.stringify(command)).toMatchObject({ ok: false });
      expect(typeof reply.error, JSON.stringify(command)).toBe("string");
    }
    expect(c.errors).toEqual([]);
    expect(c.closed).toBe(false);
    expect(await cmd(c, { op: "head", topic: "t" })).toEqual({ ok: true, head: 0 });
    expect(await store.subscriptions(c.session.id)).toEqual([]);
    expect(await cmd(c, { op: "publish", topic: "t", data: "fine" })).toEqual({ ok: true });
    expect(await cmd(c, { op: "head", topic: "t" })).toEqual({ ok: true, head: 1 });
  });
});
