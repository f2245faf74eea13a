import { describe, expect, it } from "vitest";
import { BroadcastQueue } from "../../src/membership/broadcast-queue.ts";

const b = (s: string) => Buffer.from(s);
const text = (parts: Uint8Array[]) => parts.map((p) => Buffer.from(p).toString());

describe("BroadcastQueue", () => {
  it("sends the least-sent first, newest first among equals, within the byte budget", () => {
    const q = new BroadcastQueue(() => 3);
    q.enqueue("a", b("aaaa"));
    q.enqueue("b", b("bbbb"));
    expect(text(q.take(8))).toEqual(["bbbb", "aaaa"]);
    q.enqueue("c", b("cccc"));
    expect(text(q.take(4))).toEqual(["cccc"]); // c has 0 transmits, a and b 1
    expect(text(q.take(100))).toEqual(["cccc", "bbbb", "aaaa"]);
    expect(text(q.take(3))).toEqual([]); // nothing fits
  });

  it("drops an update after the retransmit limit and tells its owner", () => {
    let done = 0;
    const q = new BroadcastQueue(() => 2);
    q.enqueue("a", b("x"), () => done++);
    q.take(10);
    expect(done).toBe(0);
    q.take(10);
    expect(done).toBe(1);
    expect(q.length).toBe(0);
    expect(q.take(10)).toEqual([]);
  });

  it("replaces an older update about the same member", () => {
    const replaced: string[] = [];
    const q = new BroadcastQueue(() => 5);
    q.enqueue("a", b("old"), () => replaced.push("old"));
    q.take(10);
    q.enqueue("a", b("new"));
    expect(replaced).toEqual(["old"]);
    expect(text(q.take(10))).toEqual(["new"]);
  });

  it("follows a changing limit, counts per-item overhead and stays bounded", () => {
    let limit = 1;
    const q = new BroadcastQueue(() => limit, 3);
    for (const k of ["a", "b", "c", "d", "e"]) q.enqueue(k, b(k));
    expect(q.length).toBe(3);
    limit = 10;
    expect(q.take(6, 1)).toHaveLength(3);
    expect(q.take(4, 1)).toHaveLength(2);
    expect(q.take(100, 0, 1)).toHaveLength(1);
  });
});
