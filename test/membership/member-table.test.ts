import { beforeEach, describe, expect, it } from "vitest";
import { Awareness } from "../../src/membership/awareness.ts";
import { BroadcastQueue } from "../../src/membership/broadcast-queue.ts";
import { decodeBody, encodeBody } from "../../src/membership/codec.ts";
import { membershipConfig } from "../../src/membership/config.ts";
import { MemberTable } from "../../src/membership/member-table.ts";
import type { Alive, Message } from "../../src/membership/messages.ts";
import { type MemberEvent, zeroCounters } from "../../src/membership/types.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";
import { silentLogger } from "../../src/util/logger.ts";

const alive = (id: string, incarnation: number, meta = {}): Alive => ({
  type: "alive",
  id,
  incarnation,
  address: `${id}:1`,
  meta,
});

describe("MemberTable precedence rules", () => {
  let clock: FakeClock;
  let queue: BroadcastQueue;
  let awareness: Awareness;
  let counters: ReturnType<typeof zeroCounters>;
  let events: Array<{ kind: string; e: MemberEvent }>;
  let t: MemberTable;

  /** Updates queued for gossip, decoded. */
  const queued = (): Message[] => queue.take(1e6).flatMap((p) => decodeBody(encodeBody("x", [p])).messages);

  beforeEach(() => {
    clock = new FakeClock();
    queue = new BroadcastQueue(() => 1); // each take() empties it
    awareness = new Awareness(8);
    counters = zeroCounters();
    events = [];
    t = new MemberTable({
      selfId: "me",
      address: "me:1",
      meta: {},
      clock,
      config: membershipConfig("lan"),
      queue,
      awareness,
      counters,
      logger: silentLogger,
      emit: (kind, e) => events.push({ kind, e }),
      onNew: () => {},
    });
    for (const id of ["a", "b", "c", "d"]) t.applyAlive(alive(id, 1));
    queued();
    events = [];
  });

  // [first update, second update, expected state of "a" after both]
  type U = ["alive" | "suspect" | "dead", number];
  const cases: Array<[U, U, string]> = [
    [["suspect", 1], ["alive", 1], "suspect"], // alive needs a higher incarnation to refute
    [["suspect", 1], ["alive", 2], "alive"],
    [["suspect", 2], ["alive", 2], "suspect"],
    [["alive", 1], ["suspect", 1], "suspect"], // suspect overrides alive of the same incarnation
    [["alive", 3], ["suspect", 2], "alive"], // an old suspicion is ignored
    [["alive", 1], ["dead", 1], "dead"],
    [["suspect", 1], ["dead", 1], "dead"],
    [["dead", 1], ["alive", 1], "dead"], // the dead stay dead at the same incarnation
    [["dead", 1], ["alive", 2], "alive"], // a restart refuted its death
    [["dead", 1], ["suspect", 5], "dead"],
    [["alive", 4], ["dead", 3], "alive"],
  ];
  it.each(cases)("%j then %j → %s", (u1, u2, expected) => {
    for (const [type, inc] of [u1, u2]) {
      if (type === "alive") t.applyAlive(alive("a", inc));
      else if (type === "suspect") t.applySuspect({ type, id: "a", incarnation: inc, from: "b" });
      else t.applyDead({ type, id: "a", incarnation: inc, from: "b" });
    }
    expect(t.state("a")).toBe(expected);
  });

  it("a suspect times out into dead after the longest timeout without confirmations", async () => {
    t.applySuspect({ type: "suspect", id: "a", incarnation: 1, from: "me" });
    // n = 5, lan: min 4 · 0.5 s = 2 s, max 12 s, 2 confirmations wanted
    await clock.advance(11_999);
    expect(t.state("a")).toBe("suspect");
    await clock.advance(2);
    expect(t.state("a")).toBe("dead");
    expect(events.map((x) => x.e.reason)).toEqual([
      "suspected by me",
      "suspicion timed out after 12.0 s (0 of 2 confirmations)",
    ]);
  });

  it("independent confirmations shorten the suspicion and are re-gossiped", async () => {
    t.applySuspect({ type: "suspect", id: "a", incarnation: 1, from: "b" });
    queued();
    t.applySuspect({ type: "suspect", id: "a", incarnation: 1, from: "b" }); // same suspector: nothing
    expect(queued()).toEqual([]);
    t.applySuspect({ type: "suspect", id: "a", incarnation: 1, from: "c" });
    expect(queued()).toEqual([{ type: "suspect", id: "a", incarnation: 1, from: "c" }]);
    t.applySuspect({ type: "suspect", id: "a", incarnation: 1, from: "d" });
    await clock.advance(1999); // both confirmations: the shortest timeout, 2 s
    expect(t.state("a")).toBe("suspect");
    await clock.advance(2);
    expect(t.state("a")).toBe("dead");
  });

  it("refutes a suspicion of itself with a higher incarnation and raises its health score", () => {
    t.applySuspect({ type: "suspect", id: "me", incarnation: 0, from: "a" });
    expect(t.incarnation).toBe(1);
    expect(t.state("me")).toBe("alive");
    expect(queued()).toEqual([{ type: "alive", id: "me", incarnation: 1, address: "me:1", meta: {} }]);
    expect(awareness.score).toBe(1);
    expect(counters.refutations).toBe(1);
    t.applyDead({ type: "dead", id: "me", incarnation: 7, from: "a" });
    expect(t.incarnation).toBe(8);
    t.applySuspect({ type: "suspect", id: "me", incarnation: 3, from: "a" }); // stale: ignored
    expect(t.incarnation).toBe(8);
  });

  it("outbids an older life of itself and ignores its own echo", () => {
    t.applyAlive(alive("me", 0));
    expect(t.incarnation).toBe(0);
    t.applyAlive(alive("me", 5));
    expect(t.incarnation).toBe(6);
    expect(awareness.score).toBe(0); // a restart is not a sign of local trouble
  });

  it("dead from the member itself is a graceful leave", () => {
    t.applyDead({ type: "dead", id: "a", incarnation: 1, from: "a" });
    expect(events.at(-1)!.e).toMatchObject({ previous: "alive", reason: "left the cluster" });
    expect(t.state("a")).toBe("left");
  });

  it("emits update (not member) when an alive member changes its metadata", () => {
    t.applyAlive(alive("a", 2, { role: "edge" }));
    expect(events.map((x) => x.kind)).toEqual(["update"]);
    expect(t.get("a")!.meta).toEqual({ role: "edge" });
  });

  it("merges a push-pull state: remote dead becomes local suspect, unknown dead are not added", () => {
    t.merge(
      [
        { id: "a", address: "a:1", meta: {}, incarnation: 1, state: "dead" },
        { id: "b", address: "b:1", meta: {}, incarnation: 1, state: "left" },
        { id: "z", address: "z:1", meta: {}, incarnation: 0, state: "dead" },
        { id: "y", address: "y:1", meta: {}, incarnation: 0, state: "alive" },
      ],
      "c",
    );
    expect([t.state("a"), t.state("b"), t.state("z"), t.state("y")]).toEqual([
      "suspect",
      "left",
      undefined,
      "alive",
    ]);
  });

  it("forgets left members after gossipToTheDeadTime, dead ones after reconnectTimeout", async () => {
    t.applyDead({ type: "dead", id: "a", incarnation: 1, from: "b" });
    t.applyDead({ type: "dead", id: "b", incarnation: 1, from: "b" });
    await clock.advance(29_000);
    t.reap();
    expect(t.recentlyDead("a")).toBe(true);
    expect(t.state("b")).toBe("left");
    await clock.advance(2000);
    t.reap();
    expect(t.recentlyDead("a")).toBe(false);
    expect(t.state("a")).toBe("dead"); // still retried by reconnect
    expect(t.get("b")).toBeUndefined();
    await clock.advance(6 * 3600_000);
    t.reap();
    expect(t.get("a")).toBeUndefined();
    expect(t.peers()).toEqual(["c", "d"]);
  });
});
