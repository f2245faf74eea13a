/**
 * The store contract: every Store implementation runs this suite (see the guarantees at the
 * top of src/store/types.ts and the doc comment of each method).
 *
 *   storeContract("memory", async () => {
 *     const store = new MemoryStore();
 *     return { store, cleanup: () => store.close() };
 *   });
 *
 * `make` is called before every test and must return an empty store; `cleanup` after it
 * (the store may already be closed by then) and must remove any files the store made.
 *
 * The suite is split by area (one file each, to stay readable):
 * - contract-sessions.ts: create / get / claim / release / sweep / delete; pushes, acks, heads
 * - contract-commit.ts: commit outcomes (committed, duplicate, gap, fenced, unknown-session),
 *   effects, the reply window, atomicity, reply bytes
 * - contract-topics.ts: readTopic / topicHead, deliver, watch, close
 *
 * What the contract pins down where types.ts leaves a choice (implementations must agree):
 * - a session is expired when `expiresAt < now` (so `claim` at exactly `expiresAt` succeeds);
 * - fencing compares epochs for equality; a commit is checked for fencing before duplicates;
 * - a push or subscribe effect naming a session that does not exist is dropped (the rest of
 *   the commit goes through); a malformed effect rejects the whole commit with
 *   LL_STORE_INVALID and writes nothing;
 * - an acknowledgement beyond `lastPushSeq` acknowledges up to `lastPushSeq` only;
 * - re-subscribing moves the subscription's offset;
 * - `createSession` of an existing id rejects with LL_STORE_EXISTS; calls after `close`
 *   reject with LL_STORE_CLOSED.
 */
import { describe, expect, it } from "vitest";
import { commitContract } from "./contract-commit.ts";
import { committed, held, type MakeStore, publish, push, useStore } from "./contract-helpers.ts";
import { sessionContract } from "./contract-sessions.ts";
import { topicContract } from "./contract-topics.ts";

export type { MakeStore } from "./contract-helpers.ts";

/** Defines the contract suite for one store implementation. */
export function storeContract(name: string, make: MakeStore): void {
  describe(`store contract: ${name}`, () => {
    sessionContract(make);
    commitContract(make);
    topicContract(make);

    describe("identity", () => {
      const ctx = useStore(make);

      it("has a kind and a description", () => {
        expect(ctx.store.kind).toMatch(/^(memory|sqlite|redis)$/);
        expect(ctx.store.description.length).toBeGreaterThan(0);
      });
    });

    describe("a session's life end to end", () => {
      const ctx = useStore(make);

      it("moves between nodes with its state, and the old node can no longer write", async () => {
        const e1 = await held(ctx.store, "s1");
        await committed(ctx.store, "s1", e1, 1, [
          push("s1", "hello"),
          { kind: "subscribe", session: "s1", topic: "t", after: "end" },
        ]);
        await committed(ctx.store, "s1", e1, 2, [publish("t", "news")]);
        await ctx.store.ackPushes("s1", e1, 1);
        await ctx.store.release("s1", e1, Date.now() + 60_000);

        // Node 2 resumes: it finds what node 1 committed and acknowledged.
        const s = await ctx.store.claim("s1", "n2", Date.now());
        expect(s).toMatchObject({
          owner: "n2",
          epoch: e1 + 1,
          lastClientSeq: 2,
          lastPushSeq: 1,
          ackedPushSeq: 1,
        });
        const delivered = await ctx.store.deliver("s1", s!.epoch, 10);
        expect(delivered.map((p) => p.seq)).toEqual([2]);
        expect(
          await ctx.store.commit({ session: "s1", epoch: e1, seq: 3, reply: new Uint8Array(), effects: [] }),
        ).toEqual({ status: "fenced" });
        await committed(ctx.store, "s1", s!.epoch, 3);
        // Held sessions do not expire while their owner renews them.
        await ctx.store.renew("n2", Date.now() + 100_000);
        expect(await ctx.store.sweep(Date.now() + 120_000)).toEqual([]);
      });
    });
  });
}
