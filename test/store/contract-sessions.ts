/**
 * Store contract, part 1: session lifecycle (create, get, claim, release, sweep, delete) and
 * the push queue (pushes, ackPushes, pushHeads).
 */
import { describe, expect, it } from "vitest";
import { OWNER_LEASE } from "../../src/store/types.ts";
import {
  committed,
  held,
  type MakeStore,
  publish,
  push,
  record,
  text,
  useStore,
} from "./contract-helpers.ts";

export function sessionContract(make: MakeStore): void {
  describe("sessions", () => {
    const ctx = useStore(make);

    it("createSession then getSession returns every field; unknown ids are undefined", async () => {
      const r = record("s1", {
        lastClientSeq: 7,
        lastPushSeq: 3,
        ackedPushSeq: 2,
        expiresAt: 5,
        owner: "x",
        epoch: 4,
      });
      await ctx.store.createSession(r);
      expect(await ctx.store.getSession("s1")).toEqual(r);
      expect(await ctx.store.getSession("nope")).toBeUndefined();
    });

    it("refuses to create a session whose id exists", async () => {
      await ctx.store.createSession(record("s1"));
      await expect(ctx.store.createSession(record("s1"))).rejects.toMatchObject({ code: "LL_STORE_EXISTS" });
    });

    it("claim raises the epoch by one each time, sets the owner and the owner's lease as expiry", async () => {
      await ctx.store.createSession(record("s1", { epoch: 0, expiresAt: 60_000, ttl: 30_000 }));
      const a = await ctx.store.claim("s1", "n1", 1000);
      expect(a).toMatchObject({ epoch: 1, owner: "n1", expiresAt: 1000 + 30_000 + OWNER_LEASE });
      const b = await ctx.store.claim("s1", "n2", 2000);
      expect(b).toMatchObject({ epoch: 2, owner: "n2", expiresAt: 2000 + 30_000 + OWNER_LEASE });
      expect(await ctx.store.getSession("s1")).toEqual(b);
    });

    it("renew extends the lease of the owner's sessions only; a dead owner's sessions expire and are swept", async () => {
      await ctx.store.createSession(record("a", { ttl: 1000 }));
      await ctx.store.createSession(record("b", { ttl: 1000 }));
      await ctx.store.claim("a", "n1", 0);
      await ctx.store.claim("b", "n2", 0);
      expect(await ctx.store.renew("n1", 50_000)).toBe(1);
      expect((await ctx.store.getSession("a"))?.expiresAt).toBe(50_000 + 1000 + OWNER_LEASE);
      expect((await ctx.store.getSession("b"))?.expiresAt).toBe(1000 + OWNER_LEASE);
      // n2 stopped renewing (it crashed): its session expires a TTL + lease after its last renewal.
      expect(await ctx.store.sweep(1000 + OWNER_LEASE + 1)).toEqual(["b"]);
      expect(await ctx.store.getSession("a")).toBeDefined();
      expect(await ctx.store.renew("nobody", 1)).toBe(0);
    });

    it("claim of an unknown session is undefined", async () => {
      expect(await ctx.store.claim("nope", "n1", Date.now())).toBeUndefined();
    });

    it("a session that expired before `now` cannot be claimed; one expiring later can", async () => {
      await ctx.store.createSession(record("s1", { expiresAt: 1000 }));
      expect(await ctx.store.claim("s1", "n1", 1001)).toBeUndefined();
      expect((await ctx.store.getSession("s1"))?.epoch).toBe(0);
      expect(await ctx.store.claim("s1", "n1", 999)).toMatchObject({ epoch: 1 });
    });

    it("a claim that expects an epoch takes the session only if it still has it", async () => {
      await ctx.store.createSession(record("s1", { expiresAt: null }));
      // Two racing claims expecting epoch 0: the first takes it, the second changes nothing.
      expect(await ctx.store.claim("s1", "n1", 0, 0)).toMatchObject({ epoch: 1, owner: "n1" });
      expect(await ctx.store.claim("s1", "n2", 0, 0)).toBeUndefined();
      expect(await ctx.store.getSession("s1")).toMatchObject({ epoch: 1, owner: "n1" });
      expect(await ctx.store.claim("s1", "n2", 0, 1)).toMatchObject({ epoch: 2, owner: "n2" });
      expect(await ctx.store.claim("s1", "n3", 0)).toMatchObject({ epoch: 3, owner: "n3" }); // no condition
    });

    it("release starts the TTL only with the current epoch", async () => {
      const e1 = await held(ctx.store, "s1");
      await ctx.store.release("s1", e1, 5000);
      expect(await ctx.store.getSession("s1")).toMatchObject({ expiresAt: 5000, owner: null, epoch: e1 });
      const e2 = (await ctx.store.claim("s1", "n2", 0))!.epoch;
      await ctx.store.release("s1", e1, 6000); // a stale holder letting go
      expect(await ctx.store.getSession("s1")).toMatchObject({ owner: "n2", epoch: e2 });
      expect((await ctx.store.getSession("s1"))?.expiresAt).toBe(30_000 + OWNER_LEASE); // n2's lease
      await ctx.store.release("nope", 1, 1); // unknown: nothing happens
    });

    it("sweep deletes expired sessions with their replies, pushes and subscriptions", async () => {
      const e = await held(ctx.store, "old");
      await held(ctx.store, "live");
      await ctx.store.createSession(record("later", { expiresAt: 10_000 }));
      await committed(ctx.store, "old", e, 1, [
        push("old", "p"),
        publish("t", "entry"),
        { kind: "subscribe", session: "old", topic: "t", after: 0 },
      ]);
      await ctx.store.release("old", e, 1000);

      expect(await ctx.store.sweep(1001)).toEqual(["old"]);
      expect(await ctx.store.getSession("old")).toBeUndefined();
      expect(await ctx.store.getSession("live")).toBeDefined();
      expect(await ctx.store.getSession("later")).toBeDefined();
      expect(await ctx.store.reply("old", 1)).toBeUndefined();
      expect(await ctx.store.pushes("old", 0, 10)).toEqual([]);
      expect(await ctx.store.subscriptions("old")).toEqual([]);
      expect(await ctx.store.topicHead("t")).toBe(1); // topic entries belong to no session
      expect(await ctx.store.sweep(1001)).toEqual([]);

      // A new session under the same id starts clean.
      await ctx.store.createSession(record("old"));
      expect(await ctx.store.pushes("old", 0, 10)).toEqual([]);
      expect(await ctx.store.reply("old", 1)).toBeUndefined();
    });

    it("deleteSession removes the session and everything it owns", async () => {
      const e = await held(ctx.store, "s1");
      await committed(ctx.store, "s1", e, 1, [
        push("s1", "p"),
        { kind: "subscribe", session: "s1", topic: "t", after: 0 },
      ]);
      await ctx.store.deleteSession("s1");
      expect(await ctx.store.getSession("s1")).toBeUndefined();
      expect(await ctx.store.pushes("s1", 0, 10)).toEqual([]);
      expect(await ctx.store.subscriptions("s1")).toEqual([]);
      expect(await ctx.store.reply("s1", 1)).toBeUndefined();
      await ctx.store.deleteSession("s1"); // twice is fine
    });
  });

  describe("pushes", () => {
    const ctx = useStore(make);

    async function withPushes(n: number): Promise<number> {
      const e = await held(ctx.store, "s1");
      await committed(
        ctx.store,
        "s1",
        e,
        1,
        Array.from({ length: n }, (_, i) => push("s1", `p${i + 1}`)),
      );
      return e;
    }

    it("are returned in order after `after`, at most `limit`", async () => {
      await withPushes(5);
      const all = await ctx.store.pushes("s1", 0, 100);
      expect(all.map((p) => [p.session, p.seq, text(p.payload)])).toEqual([
        ["s1", 1, "p1"],
        ["s1", 2, "p2"],
        ["s1", 3, "p3"],
        ["s1", 4, "p4"],
        ["s1", 5, "p5"],
      ]);
      expect((await ctx.store.pushes("s1", 2, 2)).map((p) => p.seq)).toEqual([3, 4]);
      expect(await ctx.store.pushes("s1", 5, 10)).toEqual([]);
      expect(await ctx.store.pushes("s1", 0, 0)).toEqual([]);
      expect(await ctx.store.pushes("nope", 0, 10)).toEqual([]);
    });

    it("are kept until acknowledged; ackPushes deletes up to `upTo` and records it", async () => {
      const e = await withPushes(4);
      await ctx.store.ackPushes("s1", e, 2);
      expect((await ctx.store.pushes("s1", 0, 10)).map((p) => p.seq)).toEqual([3, 4]);
      expect(await ctx.store.getSession("s1")).toMatchObject({ ackedPushSeq: 2, lastPushSeq: 4 });
      await ctx.store.ackPushes("s1", e, 1); // going backwards changes nothing
      expect(await ctx.store.getSession("s1")).toMatchObject({ ackedPushSeq: 2 });
    });

    it("ackPushes with a stale epoch is ignored", async () => {
      const e = await withPushes(3);
      await ctx.store.claim("s1", "n2", Date.now());
      await ctx.store.ackPushes("s1", e, 3);
      expect((await ctx.store.pushes("s1", 0, 10)).map((p) => p.seq)).toEqual([1, 2, 3]);
      expect((await ctx.store.getSession("s1"))?.ackedPushSeq).toBe(0);
    });

    it("an acknowledgement beyond the last push does not swallow later pushes", async () => {
      const e = await withPushes(2);
      await ctx.store.ackPushes("s1", e, 100);
      const s = await ctx.store.getSession("s1");
      expect(s?.ackedPushSeq).toBeLessThanOrEqual(s!.lastPushSeq);
      await committed(ctx.store, "s1", e, 2, [push("s1", "late")]);
      expect((await ctx.store.pushes("s1", 2, 10)).map((p) => [p.seq, text(p.payload)])).toEqual([
        [3, "late"],
      ]);
    });

    it("pushHeads gives the last assigned push sequence of known sessions", async () => {
      await withPushes(3);
      await ctx.store.createSession(record("s2", { lastPushSeq: 9 }));
      const heads = await ctx.store.pushHeads(["s1", "s2", "nope"]);
      expect([...heads.entries()].sort()).toEqual([
        ["s1", 3],
        ["s2", 9],
      ]);
      expect((await ctx.store.pushHeads([])).size).toBe(0);
    });

    it("payloads of any bytes come back exactly", async () => {
      const e = await held(ctx.store, "s1");
      const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
      const big = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251);
      const effects = [binary, new Uint8Array(0), big].map((payload) => ({
        kind: "push" as const,
        session: "s1",
        payload,
      }));
      await committed(ctx.store, "s1", e, 1, effects);
      binary[0] = 99; // the caller reusing its buffer changes nothing stored
      const got = await ctx.store.pushes("s1", 0, 10);
      expect(got.map((p) => p.seq)).toEqual([1, 2, 3]);
      expect(Buffer.from(got[0]!.payload)).toEqual(
        Buffer.from(Uint8Array.from({ length: 256 }, (_, i) => i)),
      );
      expect(got[1]!.payload.byteLength).toBe(0);
      expect(got[1]!.payload).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(got[2]!.payload).equals(Buffer.from(big))).toBe(true);
    });
  });
}
