import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Outbox, type OutboxLimits } from "../../src/client/outbox.ts";
import { OutboxFile } from "../../src/client/outbox-file.ts";

const dir = mkdtempSync(join(tmpdir(), "lifeline-outbox-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(dir, `outbox-${++files}.db`);

const b = (s: string) => Buffer.from(s);
const t = (u: Uint8Array) => Buffer.from(u).toString();
const limits = (l: Partial<OutboxLimits> = {}): OutboxLimits => ({
  maxMessages: 100,
  maxBytes: 1000,
  overflow: "reject",
  ...l,
});
/** [size, unsent, inflight, bytes] */
const shape = (o: Outbox) => [o.size, o.unsentCount, o.inflightCount, o.bytes];

describe("Outbox limits", () => {
  // [name, limits, payload sizes already held, size of the new one, fits?]
  const cases: Array<[string, Partial<OutboxLimits>, number[], number, boolean]> = [
    ["room by count and bytes", { maxMessages: 3, maxBytes: 10 }, [1, 1], 1, true],
    ["exactly at the count limit", { maxMessages: 3, maxBytes: 10 }, [1, 1], 1, true],
    ["one over the count limit", { maxMessages: 2, maxBytes: 10 }, [1, 1], 1, false],
    ["exactly at the byte limit", { maxMessages: 9, maxBytes: 10 }, [4, 4], 2, true],
    ["one byte over", { maxMessages: 9, maxBytes: 10 }, [4, 4], 3, false],
    ["an empty message still counts", { maxMessages: 2, maxBytes: 10 }, [0, 0], 0, false],
    ["a single message as large as the outbox", { maxMessages: 9, maxBytes: 10 }, [], 10, true],
    ["a single message larger than the outbox", { maxMessages: 9, maxBytes: 10 }, [], 11, false],
  ];
  it.each(cases)("reject: %s", (_, l, held, size, fits) => {
    const o = new Outbox(limits({ ...l, overflow: "reject" }));
    for (const n of held) o.add(new Uint8Array(n));
    const before = shape(o);
    if (fits) {
      expect(o.add(new Uint8Array(size)).dropped).toEqual([]);
      expect(o.size).toBe(held.length + 1);
    } else {
      expect(() => o.add(new Uint8Array(size))).toThrow(expect.objectContaining({ code: "LL_OUTBOX_FULL" }));
      expect(shape(o)).toEqual(before); // untouched
    }
  });

  it("reject leaves everything untouched: entries, order, next id", () => {
    const o = new Outbox(limits({ maxMessages: 2 }));
    const a = o.add(b("a")).entry;
    o.add(b("b"));
    o.takeNext(1);
    expect(() => o.add(b("c"))).toThrow(/outbox full/);
    expect(o.all().map((e) => t(e.payload))).toEqual(["a", "b"]);
    expect(o.inflight()).toEqual([a]);
    o.complete(1);
    const c = o.add(b("c")).entry;
    expect(c.id).toBe(3); // no id was used up by the refused message
  });

  it("a message larger than the outbox is refused even with drop-oldest (and nothing is dropped)", () => {
    const o = new Outbox(limits({ maxBytes: 5, overflow: "drop-oldest" }));
    o.add(b("abc"));
    expect(() => o.add(b("abcdef"))).toThrow(/larger than the outbox/);
    expect(shape(o)).toEqual([1, 1, 0, 3]);
  });

  it("entries get increasing ids and no seq until sent", () => {
    const o = new Outbox(limits());
    const ids = ["a", "b", "c"].map((s) => o.add(b(s)).entry);
    expect(ids.map((e) => e.id)).toEqual([1, 2, 3]);
    expect(ids.map((e) => e.seq)).toEqual([undefined, undefined, undefined]);
  });
});

describe("Outbox drop-oldest", () => {
  it("drops the oldest unsent messages until the new one fits (count)", () => {
    const o = new Outbox(limits({ maxMessages: 3, overflow: "drop-oldest" }));
    for (const s of ["a", "b", "c"]) o.add(b(s));
    const r = o.add(b("d"));
    expect(r.dropped.map((e) => t(e.payload))).toEqual(["a"]);
    expect(o.all().map((e) => t(e.payload))).toEqual(["b", "c", "d"]);
    expect(shape(o)).toEqual([3, 3, 0, 3]);
  });

  it("drops as many as the bytes need", () => {
    const o = new Outbox(limits({ maxBytes: 10, overflow: "drop-oldest" }));
    o.add(b("aaa"));
    o.add(b("bbb"));
    o.add(b("cc"));
    const r = o.add(b("dddddd")); // needs 6: 8 held -> drop aaa (5 left), bbb (2 left)
    expect(r.dropped.map((e) => t(e.payload))).toEqual(["aaa", "bbb"]);
    expect(o.all().map((e) => t(e.payload))).toEqual(["cc", "dddddd"]);
    expect(o.bytes).toBe(8);
  });

  it("never drops a sent message: only unsent ones behind it", () => {
    const o = new Outbox(limits({ maxMessages: 3, overflow: "drop-oldest" }));
    const a = o.add(b("a")).entry;
    o.add(b("b"));
    o.add(b("c"));
    o.takeNext(1); // a is in flight
    const r = o.add(b("d"));
    expect(r.dropped.map((e) => t(e.payload))).toEqual(["b"]);
    expect(o.inflight()).toEqual([a]);
    expect(o.all().map((e) => t(e.payload))).toEqual(["a", "c", "d"]);
  });

  it("when only sent messages are left it refuses (LL_OUTBOX_FULL) and drops nothing", () => {
    const o = new Outbox(limits({ maxMessages: 2, overflow: "drop-oldest" }));
    o.add(b("a"));
    o.add(b("b"));
    o.takeNext(1);
    o.takeNext(2);
    expect(() => o.add(b("c"))).toThrow(expect.objectContaining({ code: "LL_OUTBOX_FULL" }));
    expect(shape(o)).toEqual([2, 0, 2, 2]);
  });

  it("when dropping every unsent one would still not make room, it drops none", () => {
    const o = new Outbox(limits({ maxBytes: 10, overflow: "drop-oldest" }));
    o.add(b("sssssss")); // 7, will be in flight
    o.add(b("u")); // 1, unsent
    o.takeNext(1);
    expect(() => o.add(b("xxxxx"))).toThrow(expect.objectContaining({ code: "LL_OUTBOX_FULL" }));
    expect(o.all().map((e) => t(e.payload))).toEqual(["sssssss", "u"]);
    expect(o.bytes).toBe(8);
  });
});

describe("Outbox bookkeeping", () => {
  const filled = () => {
    const o = new Outbox(limits());
    for (const s of ["aa", "bbb", "c", "dddd"]) o.add(b(s));
    return o;
  };

  it("takeNext assigns the given seq, in order, and moves the message to in flight", () => {
    const o = filled();
    expect(o.takeNext(10)).toMatchObject({ id: 1, seq: 10 });
    expect(o.takeNext(11)).toMatchObject({ id: 2, seq: 11 });
    expect(shape(o)).toEqual([4, 2, 2, 10]);
    expect(o.inflight().map((e) => e.seq)).toEqual([10, 11]);
    o.takeNext(12);
    o.takeNext(13);
    expect(o.takeNext(14)).toBeUndefined();
    expect(shape(o)).toEqual([4, 0, 4, 10]);
  });

  it("complete removes one in-flight message by seq, in any order; unknown or unsent seqs are ignored", () => {
    const o = filled();
    o.takeNext(1);
    o.takeNext(2);
    o.takeNext(3);
    expect(t(o.complete(2)!.payload)).toBe("bbb");
    expect(shape(o)).toEqual([3, 1, 2, 7]);
    expect(o.complete(2)).toBeUndefined(); // a duplicate answer
    expect(o.complete(4)).toBeUndefined(); // not sent yet (would be seq 4)
    expect(o.complete(99)).toBeUndefined();
    expect(t(o.complete(3)!.payload)).toBe("c");
    expect(t(o.complete(1)!.payload)).toBe("aa");
    expect(shape(o)).toEqual([1, 1, 0, 4]);
    expect(o.takeNext(4)!.payload).toEqual(b("dddd"));
  });

  it("acknowledge removes every in-flight message up to a seq", () => {
    const o = filled();
    o.takeNext(1);
    o.takeNext(2);
    o.takeNext(3);
    expect(o.acknowledge(0)).toEqual([]);
    expect(o.acknowledge(2).map((e) => e.seq)).toEqual([1, 2]);
    expect(shape(o)).toEqual([2, 1, 1, 5]);
    expect(o.acknowledge(100).map((e) => e.seq)).toEqual([3]); // never an unsent one
    expect(shape(o)).toEqual([1, 1, 0, 4]);
  });

  it("dropInflight returns the sent ones and keeps the unsent", () => {
    const o = filled();
    o.takeNext(1);
    o.takeNext(2);
    expect(o.dropInflight().map((e) => t(e.payload))).toEqual(["aa", "bbb"]);
    expect(shape(o)).toEqual([2, 2, 0, 5]);
    expect(o.dropInflight()).toEqual([]);
    // The unsent ones are sent next, in order.
    expect(t(o.takeNext(1)!.payload)).toBe("c");
  });

  it("clear empties everything and returns what was held", () => {
    const o = filled();
    o.takeNext(1);
    expect(o.clear().map((e) => t(e.payload))).toEqual(["aa", "bbb", "c", "dddd"]);
    expect(shape(o)).toEqual([0, 0, 0, 0]);
  });

  it("counts and bytes stay consistent through a random mix of operations", () => {
    let seed = 1;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const o = new Outbox(limits({ maxMessages: 20, maxBytes: 200, overflow: "drop-oldest" }));
    let nextSeq = 1;
    for (let i = 0; i < 2000; i++) {
      const r = rnd();
      try {
        if (r < 0.45) o.add(new Uint8Array(Math.floor(rnd() * 20)));
        else if (r < 0.7) {
          if (o.takeNext(nextSeq)) nextSeq++;
        } else if (r < 0.9) {
          const inflight = o.inflight();
          if (inflight.length) o.complete(inflight[Math.floor(rnd() * inflight.length)]!.seq!);
        } else if (r < 0.95) o.acknowledge(nextSeq - 1 - Math.floor(rnd() * 3));
        else o.dropInflight();
      } catch (err) {
        expect(err).toMatchObject({ code: "LL_OUTBOX_FULL" });
      }
      const all = o.all();
      expect(o.bytes).toBe(all.reduce((n, e) => n + e.payload.length, 0));
      expect(o.size).toBe(all.length);
      expect(o.inflightCount + o.unsentCount).toBe(o.size);
      expect(o.size).toBeLessThanOrEqual(20);
      expect(o.bytes).toBeLessThanOrEqual(200);
      // Sent ones first (with increasing seqs), then unsent ones.
      const inflight = o.inflight();
      expect(inflight.every((e) => e.seq !== undefined)).toBe(true);
      expect(all.slice(inflight.length).every((e) => e.seq === undefined)).toBe(true);
      for (let k = 1; k < inflight.length; k++)
        expect(inflight[k]!.seq!).toBeGreaterThan(inflight[k - 1]!.seq!);
    }
  });
});

describe("Outbox with an OutboxFile", () => {
  it("reopening restores entries in order, sent ones with their seqs, and the saved session", () => {
    const path = freshPath();
    const f = new OutboxFile(path);
    const o = new Outbox(limits(), f);
    for (const s of ["one", "two", "three", "four", "five"]) o.add(b(s));
    o.takeNext(1);
    o.takeNext(2);
    o.takeNext(3);
    o.complete(2); // answered: gone from the file too
    f.saveSession({ id: "sess", token: "tok", lastPushSeq: 7, lastSeq: 3, topics: ["news"] });
    f.close();

    const g = new OutboxFile(path);
    const p = new Outbox(limits(), g);
    expect(p.all().map((e) => [e.id, e.seq, t(e.payload), e.recovered])).toEqual([
      [1, 1, "one", true],
      [3, 3, "three", true],
      [4, undefined, "four", true],
      [5, undefined, "five", true],
    ]);
    expect(shape(p)).toEqual([4, 2, 2, 16]);
    expect(g.session()).toEqual({ id: "sess", token: "tok", lastPushSeq: 7, lastSeq: 3, topics: ["news"] });
    // New messages continue the ids.
    expect(p.add(b("six")).entry.id).toBe(6);
    g.close();
  });

  it("every operation is written through: drop-oldest, acknowledge, dropInflight", () => {
    const path = freshPath();
    const f = new OutboxFile(path);
    const o = new Outbox(limits({ maxMessages: 3, overflow: "drop-oldest" }), f);
    for (const s of ["a", "b", "c"]) o.add(b(s));
    o.takeNext(1);
    o.add(b("d")); // drops b
    expect(f.load().map((e) => [t(e.payload), e.seq])).toEqual([
      ["a", 1],
      ["c", undefined],
      ["d", undefined],
    ]);
    o.takeNext(2);
    o.acknowledge(1);
    expect(f.load().map((e) => [t(e.payload), e.seq])).toEqual([
      ["c", 2],
      ["d", undefined],
    ]);
    o.dropInflight();
    expect(f.load().map((e) => t(e.payload))).toEqual(["d"]);
    o.clear(); // clear() is for memory-only clients: the file keeps what it has
    expect(f.load().map((e) => t(e.payload))).toEqual(["d"]);
    f.close();
  });

  it("binary payloads (with an offset into a larger buffer) round-trip byte for byte", () => {
    const path = freshPath();
    const f = new OutboxFile(path);
    const o = new Outbox(limits(), f);
    const big = new Uint8Array(300).map((_, i) => i & 0xff);
    const slice = big.subarray(100, 164);
    o.add(slice);
    f.close();
    const g = new OutboxFile(path);
    expect(Array.from(g.load()[0]!.payload)).toEqual(Array.from(slice));
    g.close();
  });

  it("saveSession(undefined) forgets the session", () => {
    const path = freshPath();
    const f = new OutboxFile(path);
    expect(f.session()).toBeUndefined();
    f.saveSession({ id: "s", token: "t", lastPushSeq: 0, lastSeq: 0 });
    f.saveSession(undefined);
    f.close();
    const g = new OutboxFile(path);
    expect(g.session()).toBeUndefined();
    g.close();
  });

  it("a second OutboxFile on the same path fails with LL_OUTBOX_FILE (exclusive lock), then works once the first closed", () => {
    const path = freshPath();
    const f = new OutboxFile(path);
    new Outbox(limits(), f).add(b("held"));
    let err: unknown;
    try {
      new OutboxFile(path);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "LL_OUTBOX_FILE" });
    expect(String((err as Error).message)).toContain(path);
    // The first one is unharmed by the attempt.
    f.saveSession({ id: "s", token: "t", lastPushSeq: 0, lastSeq: 0 });
    f.close();
    const g = new OutboxFile(path);
    expect(g.load().map((e) => t(e.payload))).toEqual(["held"]);
    g.close();
  });

  // Regression test, a bug once (OutboxFile: the lock failure is not "at once"; it blocks the event loop 5 s):
  // better-sqlite3 opens with a 5,000 ms busy timeout, so `new OutboxFile(path)` on a locked
  // file (and so `createClient({ outbox: { path } })`) spins synchronously for 5 s before
  // throwing LL_OUTBOX_FILE, freezing the whole process. The doc says it fails "at once".
  // Fix: `new Database(path, { timeout: 0 })` (or a small one).
  it("a second OutboxFile on a locked path fails within a second", () => {
    const path = freshPath();
    const f = new OutboxFile(path);
    const t0 = performance.now();
    try {
      expect(() => new OutboxFile(path)).toThrow(expect.objectContaining({ code: "LL_OUTBOX_FILE" }));
      expect(performance.now() - t0).toBeLessThan(1000); // it takes about 5,000
    } finally {
      f.close();
    }
  });

  it("a path that cannot be opened fails with LL_OUTBOX_FILE", () => {
    expect(() => new OutboxFile(join(dir, "no-such-dir", "x.db"))).toThrow(
      expect.objectContaining({ code: "LL_OUTBOX_FILE" }),
    );
  });

  it("close() twice is harmless", () => {
    const f = new OutboxFile(freshPath());
    f.close();
    expect(() => f.close()).not.toThrow();
  });
});
