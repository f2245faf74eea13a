/**
 * MemoryStore: the store contract, plus what only the in-process store promises.
 */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../../src/store/memory.ts";
import { storeContract } from "./contract.ts";
import { committed, held, push, recordChanges, sessionsIn } from "./contract-helpers.ts";

storeContract("memory", async () => {
  const store = new MemoryStore();
  return { store, cleanup: () => store.close() };
});

describe("MemoryStore", () => {
  it("tells watchers in a microtask after the commit, before any timer", async () => {
    const store = new MemoryStore();
    const e = await held(store, "s1");
    const w = recordChanges(store);
    await committed(store, "s1", e, 1, [push("s1", "x")]);
    await Promise.resolve();
    expect(sessionsIn(w.changes)).toEqual(["s1"]);
    await store.close();
  });

  it("returned bytes are copies: changing them does not change the store", async () => {
    const store = new MemoryStore();
    const e = await held(store, "s1");
    await committed(store, "s1", e, 1, [push("s1", "abc")]);
    const [p] = await store.pushes("s1", 0, 1);
    p!.payload.fill(0);
    (await store.reply("s1", 1))!.fill(0);
    expect(Buffer.from((await store.pushes("s1", 0, 1))[0]!.payload).toString()).toBe("abc");
    expect(Buffer.from((await store.reply("s1", 1))!).toString()).toBe("r1");
    await store.close();
  });
});
