/**
 * Store contract, part 2: `commit` — its five outcomes, its effects, the reply window, and
 * atomicity (a commit that fails writes nothing).
 */
import { describe, expect, it } from "vitest";
import { REPLY_WINDOW, type Store } from "../../src/store/types.ts";
import {
  bytes,
  commit,
  committed,
  held,
  type MakeStore,
  publish,
  push,
  record,
  text,
  useStore,
} from "./contract-helpers.ts";

/** Everything a commit could have changed, to compare before and after. */
async function snapshot(store: Store, sessions: string[], topics: string[]) {
  return {
    sessions: await Promise.all(sessions.map((s) => store.getSession(s))),
    pushes: await Promise.all(sessions.map((s) => store.pushes(s, 0, 1000))),
    subs: await Promise.all(sessions.map((s) => store.subscriptions(s))),
    heads: await Promise.all(topics.map((t) => store.topicHead(t))),
    entries: await Promise.all(topics.map((t) => store.readTopic(t, 0, 1000))),
  };
}

export function commitContract(make: MakeStore): void {
  describe("commit", () => {
    const ctx = useStore(make);

    it("committed: stores the reply, advances lastClientSeq, gives pushes consecutive seqs per session", async () => {
      const e = await held(ctx.store, "s1", { lastPushSeq: 3 });
      await ctx.store.createSession(record("s2", { lastPushSeq: 5 }));
      const r = await committed(ctx.store, "s1", e, 1, [push("s1", "a"), push("s2", "b"), push("s1", "c")]);
      expect(r.pushes.map((p) => [p.session, p.seq, text(p.payload)])).toEqual([
        ["s1", 4, "a"],
        ["s2", 6, "b"],
        ["s1", 5, "c"],
      ]);
      expect(r.published).toEqual([]);
      expect(await ctx.store.getSession("s1")).toMatchObject({ lastClientSeq: 1, lastPushSeq: 5 });
      expect(await ctx.store.getSession("s2")).toMatchObject({ lastClientSeq: 0, lastPushSeq: 6 });
      expect(text(await ctx.store.reply("s1", 1))).toBe("r1");
      expect((await ctx.store.pushes("s2", 0, 10)).map((p) => text(p.payload))).toEqual(["b"]);
      const r2 = await committed(ctx.store, "s1", e, 2, [push("s2", "d")]);
      expect(r2.pushes.map((p) => p.seq)).toEqual([7]);
    });

    it("a push to a session that does not exist is dropped, the rest commits", async () => {
      const e = await held(ctx.store, "s1");
      const r = await committed(ctx.store, "s1", e, 1, [push("gone", "x"), push("s1", "y")]);
      expect(r.pushes.map((p) => [p.session, p.seq])).toEqual([["s1", 1]]);
      expect(await ctx.store.getSession("gone")).toBeUndefined();
    });

    it("publishes get consecutive offsets per topic, in effect order", async () => {
      const e = await held(ctx.store, "s1");
      const r = await committed(ctx.store, "s1", e, 1, [
        publish("a", "1"),
        publish("b", "1"),
        publish("a", "2"),
      ]);
      expect(r.published).toEqual([
        { topic: "a", offset: 1 },
        { topic: "b", offset: 1 },
        { topic: "a", offset: 2 },
      ]);
      const r2 = await committed(ctx.store, "s1", e, 2, [publish("a", "3")]);
      expect(r2.published).toEqual([{ topic: "a", offset: 3 }]);
      expect(await ctx.store.topicHead("a")).toBe(3);
      expect(await ctx.store.topicHead("b")).toBe(1);
    });

    it('subscribe from "end" starts after the current head (this commit\'s publishes included)', async () => {
      const e = await held(ctx.store, "s1");
      await committed(ctx.store, "s1", e, 1, [publish("t", "1"), publish("t", "2")]);
      await committed(ctx.store, "s1", e, 2, [
        publish("t", "3"),
        { kind: "subscribe", session: "s1", topic: "t", after: "end" },
        { kind: "subscribe", session: "s1", topic: "empty", after: "end" },
      ]);
      expect(await ctx.store.subscriptions("s1")).toEqual([
        { session: "s1", topic: "empty", offset: 0 },
        { session: "s1", topic: "t", offset: 3 },
      ]);
    });

    it("subscribe from an explicit offset, re-subscribe moves it, unsubscribe removes it", async () => {
      const e = await held(ctx.store, "s1");
      await ctx.store.createSession(record("s2"));
      await committed(ctx.store, "s1", e, 1, [
        { kind: "subscribe", session: "s1", topic: "a", after: 0 },
        { kind: "subscribe", session: "s1", topic: "b", after: 2 },
        { kind: "subscribe", session: "s2", topic: "a", after: 1 },
      ]);
      expect(await ctx.store.subscriptions("s1")).toEqual([
        { session: "s1", topic: "a", offset: 0 },
        { session: "s1", topic: "b", offset: 2 },
      ]);
      expect(await ctx.store.subscriptions("s2")).toEqual([{ session: "s2", topic: "a", offset: 1 }]);
      await committed(ctx.store, "s1", e, 2, [
        { kind: "subscribe", session: "s1", topic: "b", after: 5 },
        { kind: "unsubscribe", session: "s1", topic: "a" },
        { kind: "unsubscribe", session: "s1", topic: "never" },
      ]);
      expect(await ctx.store.subscriptions("s1")).toEqual([{ session: "s1", topic: "b", offset: 5 }]);
      expect(await ctx.store.subscriptions("s2")).toEqual([{ session: "s2", topic: "a", offset: 1 }]);
    });

    it("duplicate: the same seq again returns the stored reply and applies no effect twice", async () => {
      const e = await held(ctx.store, "s1");
      await ctx.store.createSession(record("s2"));
      const effects = [push("s1", "p"), push("s2", "q"), publish("t", "x")];
      await committed(ctx.store, "s1", e, 1, [
        ...effects,
        { kind: "subscribe", session: "s1", topic: "u", after: 0 },
      ]);
      const before = await snapshot(ctx.store, ["s1", "s2"], ["t", "u"]);
      const again = await commit(
        ctx.store,
        "s1",
        e,
        1,
        [...effects, { kind: "unsubscribe", session: "s1", topic: "u" }],
        bytes("other"),
      );
      expect(again.status).toBe("duplicate");
      expect(again.status === "duplicate" && text(again.reply)).toBe("r1");
      expect(await snapshot(ctx.store, ["s1", "s2"], ["t", "u"])).toEqual(before);
      expect(text(await ctx.store.reply("s1", 1))).toBe("r1");
    });

    it("gap: a seq beyond lastClientSeq + 1 is refused with the expected seq, nothing written", async () => {
      const e = await held(ctx.store, "s1", { lastClientSeq: 10 });
      const before = await snapshot(ctx.store, ["s1"], ["t"]);
      expect(await commit(ctx.store, "s1", e, 13, [push("s1", "x"), publish("t", "y")])).toEqual({
        status: "gap",
        expected: 11,
      });
      expect(await snapshot(ctx.store, ["s1"], ["t"])).toEqual(before);
      expect(await ctx.store.reply("s1", 13)).toBeUndefined();
      await committed(ctx.store, "s1", e, 11);
    });

    it("fenced: after another claim, the old epoch cannot commit and writes nothing", async () => {
      const old = await held(ctx.store, "s1");
      await committed(ctx.store, "s1", old, 1);
      const fresh = (await ctx.store.claim("s1", "n2", Date.now()))!.epoch;
      expect(fresh).toBeGreaterThan(old);
      const before = await snapshot(ctx.store, ["s1"], ["t"]);
      expect(await commit(ctx.store, "s1", old, 2, [push("s1", "x"), publish("t", "y")])).toEqual({
        status: "fenced",
      });
      expect(await snapshot(ctx.store, ["s1"], ["t"])).toEqual(before);
      expect(await ctx.store.reply("s1", 2)).toBeUndefined();
      await committed(ctx.store, "s1", fresh, 2);
    });

    it("unknown-session", async () => {
      expect(await commit(ctx.store, "nope", 1, 1, [publish("t", "x")])).toEqual({
        status: "unknown-session",
      });
      expect(await ctx.store.topicHead("t")).toBe(0);
    });

    it(`keeps only the last REPLY_WINDOW (${REPLY_WINDOW}) replies; older resends are still duplicates`, async () => {
      const e = await held(ctx.store, "s1");
      const n = REPLY_WINDOW + 5;
      for (let seq = 1; seq <= n; seq++) await committed(ctx.store, "s1", e, seq);
      expect(await ctx.store.reply("s1", 5)).toBeUndefined();
      expect(text(await ctx.store.reply("s1", 6))).toBe("r6");
      expect(text(await ctx.store.reply("s1", n))).toBe(`r${n}`);
      expect(await commit(ctx.store, "s1", e, 1, [publish("t", "x")])).toEqual({
        status: "duplicate",
        reply: undefined,
      });
      const kept = await commit(ctx.store, "s1", e, 6);
      expect(kept.status === "duplicate" && text(kept.reply)).toBe("r6");
      expect(await ctx.store.topicHead("t")).toBe(0);
    });

    it("is atomic: a commit that fails part-way writes neither the reply nor any effect", async () => {
      const e = await held(ctx.store, "s1");
      await ctx.store.createSession(record("s2"));
      const before = await snapshot(ctx.store, ["s1", "s2"], ["t"]);
      const bad = { kind: "push", session: "s2", payload: "not bytes" } as unknown as ReturnType<typeof push>;
      await expect(
        commit(ctx.store, "s1", e, 1, [
          push("s2", "a"),
          publish("t", "b"),
          { kind: "subscribe", session: "s1", topic: "t", after: 0 },
          bad,
        ]),
      ).rejects.toMatchObject({ code: "LL_STORE_INVALID" });
      expect(await snapshot(ctx.store, ["s1", "s2"], ["t"])).toEqual(before);
      expect(await ctx.store.reply("s1", 1)).toBeUndefined();
      await committed(ctx.store, "s1", e, 1, [push("s2", "a")]); // the same seq commits once fixed
    });

    it("replies of any bytes come back exactly, also as a duplicate's reply", async () => {
      const e = await held(ctx.store, "s1");
      const binary = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
      await commit(ctx.store, "s1", e, 1, [], new Uint8Array(0));
      await commit(ctx.store, "s1", e, 2, [], binary);
      binary.fill(0); // the caller reusing its buffer changes nothing stored
      const empty = await ctx.store.reply("s1", 1);
      expect(empty).toBeInstanceOf(Uint8Array);
      expect(empty?.byteLength).toBe(0);
      const expected = Buffer.from(Uint8Array.from({ length: 256 }, (_, i) => 255 - i));
      expect(Buffer.from((await ctx.store.reply("s1", 2))!).equals(expected)).toBe(true);
      const dup = await commit(ctx.store, "s1", e, 2);
      expect(dup.status === "duplicate" && Buffer.from(dup.reply!).equals(expected)).toBe(true);
    });
  });
}
