/**
 * Store contract, part 3: durable topics (readTopic, topicHead), `deliver` (entries into
 * pushes, once and in order, fenced by the epoch) and `watch` notifications.
 */
import { describe, expect, it } from "vitest";
import { decodeDelivery } from "../../src/store/delivery.ts";
import type { PushRecord } from "../../src/store/types.ts";
import {
  committed,
  held,
  type MakeStore,
  publish,
  push,
  record,
  recordChanges,
  sessionsIn,
  settle,
  text,
  topicsIn,
  useStore,
  waitFor,
} from "./contract-helpers.ts";

/** [topic, offset, payload] of delivered pushes. */
const delivered = (pushes: PushRecord[]) =>
  pushes.map((p) => {
    const e = decodeDelivery(p.payload);
    return [e.topic, e.offset, text(e.payload)];
  });

export function topicContract(make: MakeStore): void {
  describe("topics", () => {
    const ctx = useStore(make);

    it("readTopic returns entries after `after`, in offset order, at most `limit`; topicHead the last offset", async () => {
      const e = await held(ctx.store, "s1");
      const t0 = Date.now();
      await committed(ctx.store, "s1", e, 1, [publish("t", "a"), publish("t", "b"), publish("u", "x")]);
      await committed(ctx.store, "s1", e, 2, [publish("t", "c")]);
      const all = await ctx.store.readTopic("t", 0, 100);
      expect(all.map((x) => [x.topic, x.offset, text(x.payload)])).toEqual([
        ["t", 1, "a"],
        ["t", 2, "b"],
        ["t", 3, "c"],
      ]);
      for (const x of all) expect(x.at).toBeGreaterThanOrEqual(t0 - 1000);
      for (const x of all) expect(x.at).toBeLessThanOrEqual(Date.now() + 1000);
      expect((await ctx.store.readTopic("t", 1, 1)).map((x) => x.offset)).toEqual([2]);
      expect(await ctx.store.readTopic("t", 3, 10)).toEqual([]);
      expect(await ctx.store.readTopic("t", 0, 0)).toEqual([]);
      expect(await ctx.store.readTopic("none", 0, 10)).toEqual([]);
      expect(await ctx.store.topicHead("t")).toBe(3);
      expect(await ctx.store.topicHead("none")).toBe(0);
    });

    it("entry payloads of any bytes come back exactly", async () => {
      const e = await held(ctx.store, "s1");
      const binary = Uint8Array.from({ length: 300 }, (_, i) => (i * 31) % 256);
      await committed(ctx.store, "s1", e, 1, [
        { kind: "publish", topic: "t", payload: new Uint8Array(0) },
        { kind: "publish", topic: "t", payload: binary },
      ]);
      const [empty, bin] = await ctx.store.readTopic("t", 0, 10);
      expect(empty!.payload.byteLength).toBe(0);
      expect(Buffer.from(bin!.payload).equals(Buffer.from(binary))).toBe(true);
    });
  });

  describe("deliver", () => {
    const ctx = useStore(make);

    it("moves subscribed entries of several topics into pushes once, in order, after existing pushes", async () => {
      const e = await held(ctx.store, "s1");
      await committed(ctx.store, "s1", e, 1, [push("s1", "direct"), publish("b", "b1"), publish("a", "a1")]);
      await committed(ctx.store, "s1", e, 2, [
        { kind: "subscribe", session: "s1", topic: "a", after: 0 },
        { kind: "subscribe", session: "s1", topic: "b", after: "end" },
        publish("a", "a2"),
        publish("b", "b2"),
      ]);
      const got = await ctx.store.deliver("s1", e, 100);
      expect(got.map((p) => [p.session, p.seq])).toEqual([
        ["s1", 2],
        ["s1", 3],
        ["s1", 4],
      ]);
      const rows = delivered(got);
      expect(rows.filter((r) => r[0] === "a")).toEqual([
        ["a", 1, "a1"],
        ["a", 2, "a2"],
      ]);
      expect(rows.filter((r) => r[0] === "b")).toEqual([["b", 2, "b2"]]);
      expect((await ctx.store.pushes("s1", 0, 10)).map((p) => p.seq)).toEqual([1, 2, 3, 4]);
      expect(delivered((await ctx.store.pushes("s1", 1, 10)).slice(0))).toEqual(rows);
      expect(await ctx.store.getSession("s1")).toMatchObject({ lastPushSeq: 4 });
      expect(await ctx.store.subscriptions("s1")).toEqual([
        { session: "s1", topic: "a", offset: 2 },
        { session: "s1", topic: "b", offset: 2 },
      ]);
      expect(await ctx.store.deliver("s1", e, 100)).toEqual([]); // nothing new

      await committed(ctx.store, "s1", e, 3, [publish("b", "b3")]);
      const next = await ctx.store.deliver("s1", e, 100);
      expect(delivered(next)).toEqual([["b", 3, "b3"]]);
      expect(next.map((p) => p.seq)).toEqual([5]);
    });

    it("respects `limit` across calls and never skips or repeats an entry", async () => {
      const e = await held(ctx.store, "s1");
      await committed(ctx.store, "s1", e, 1, [
        { kind: "subscribe", session: "s1", topic: "a", after: 0 },
        { kind: "subscribe", session: "s1", topic: "b", after: 0 },
        ...["1", "2", "3"].map((x) => publish("a", x)),
        ...["1", "2"].map((x) => publish("b", x)),
      ]);
      const sizes: number[] = [];
      const rows: unknown[] = [];
      for (let i = 0; i < 5; i++) {
        const got = await ctx.store.deliver("s1", e, 2);
        sizes.push(got.length);
        rows.push(...delivered(got));
      }
      expect(sizes).toEqual([2, 2, 1, 0, 0]);
      expect(rows).toHaveLength(5);
      expect(rows.filter((r) => (r as unknown[])[0] === "a")).toEqual([
        ["a", 1, "1"],
        ["a", 2, "2"],
        ["a", 3, "3"],
      ]);
      expect(rows.filter((r) => (r as unknown[])[0] === "b")).toEqual([
        ["b", 1, "1"],
        ["b", 2, "2"],
      ]);
      expect(await ctx.store.deliver("s1", e, 0)).toEqual([]);
    });

    it("each subscriber gets each entry once", async () => {
      const e1 = await held(ctx.store, "s1");
      const e2 = await held(ctx.store, "s2");
      await committed(ctx.store, "s1", e1, 1, [
        { kind: "subscribe", session: "s1", topic: "t", after: 0 },
        { kind: "subscribe", session: "s2", topic: "t", after: 0 },
        publish("t", "x"),
      ]);
      expect(delivered(await ctx.store.deliver("s1", e1, 10))).toEqual([["t", 1, "x"]]);
      expect(delivered(await ctx.store.deliver("s2", e2, 10))).toEqual([["t", 1, "x"]]);
      expect(await ctx.store.deliver("s1", e1, 10)).toEqual([]);
    });

    it("is fenced by the epoch: a stale holder delivers nothing and moves nothing", async () => {
      const old = await held(ctx.store, "s1");
      await committed(ctx.store, "s1", old, 1, [
        { kind: "subscribe", session: "s1", topic: "t", after: 0 },
        publish("t", "x"),
      ]);
      const fresh = (await ctx.store.claim("s1", "n2", Date.now()))!.epoch;
      expect(await ctx.store.deliver("s1", old, 10)).toEqual([]);
      expect(await ctx.store.subscriptions("s1")).toEqual([{ session: "s1", topic: "t", offset: 0 }]);
      expect(await ctx.store.pushes("s1", 0, 10)).toEqual([]);
      expect(delivered(await ctx.store.deliver("s1", fresh, 10))).toEqual([["t", 1, "x"]]);
      expect(await ctx.store.deliver("nope", 1, 10)).toEqual([]);
    });
  });

  describe("watch", () => {
    const ctx = useStore(make);

    it("reports sessions that got pushes and topics that got entries, after the commit", async () => {
      const e = await held(ctx.store, "s1");
      await ctx.store.createSession(record("s2"));
      const w = recordChanges(ctx.store);
      await committed(ctx.store, "s1", e, 1, [push("s2", "hi")]);
      await waitFor(() => sessionsIn(w.changes).includes("s2"), 5000, "a sessions change naming s2");
      await committed(ctx.store, "s1", e, 2, [publish("news", "x")]);
      await waitFor(() => topicsIn(w.changes).includes("news"), 5000, "a topics change naming news");
      expect(sessionsIn(w.changes)).not.toContain("s1");
      w.stop();
    });

    it("an unwatched listener hears nothing more; a throwing listener does not silence others", async () => {
      const e = await held(ctx.store, "s1");
      const gone = recordChanges(ctx.store);
      gone.stop();
      ctx.store.watch(() => {
        throw new Error("listener bug");
      });
      const w = recordChanges(ctx.store);
      await committed(ctx.store, "s1", e, 1, [publish("t", "x")]);
      await waitFor(() => topicsIn(w.changes).includes("t"), 5000, "a topics change");
      await settle();
      expect(gone.changes).toEqual([]);
      w.stop();
    });

    it("nothing is reported for commits that did not commit", async () => {
      const e = await held(ctx.store, "s1");
      await committed(ctx.store, "s1", e, 1, [publish("t", "x")]);
      const w = recordChanges(ctx.store);
      await ctx.store.commit({
        session: "s1",
        epoch: e,
        seq: 1,
        reply: new Uint8Array(0),
        effects: [publish("t", "y")],
      });
      await settle();
      expect(topicsIn(w.changes)).toEqual([]);
      w.stop();
    });
  });

  describe("close", () => {
    const ctx = useStore(make);

    it("is healthy while open; after close it is not, and calls reject with LL_STORE_CLOSED", async () => {
      expect(ctx.store.healthy()).toBe(true);
      await ctx.store.close();
      expect(ctx.store.healthy()).toBe(false);
      await expect(ctx.store.getSession("s1")).rejects.toMatchObject({ code: "LL_STORE_CLOSED" });
      await expect(ctx.store.createSession(record("s1"))).rejects.toMatchObject({ code: "LL_STORE_CLOSED" });
      await ctx.store.close(); // twice is fine
    });
  });
}
