import { describe, expect, it } from "vitest";
import { ServerPicker, type ServerView, weight, weightedOrder } from "../../src/client/picker.ts";
import type { NodeLoad } from "../../src/protocol/messages.ts";
import { seededRandom } from "../../src/util/clock.ts";

const view = (v: Partial<ServerView>): ServerView => ({
  address: "a:1",
  avoidUntil: 0,
  failures: 0,
  seed: true,
  ...v,
});
const load = (l: Partial<NodeLoad>): NodeLoad => ({
  connections: 0,
  sessions: 0,
  lag: 0,
  queue: 0,
  cpu: 0,
  ...l,
});

describe("weight()", () => {
  // [name, view, now, expected weight]
  const cases: Array<[string, Partial<ServerView>, number, number]> = [
    ["unknown state", {}, 0, 1],
    ["healthy", { state: "healthy" }, 0, 1],
    ["degraded", { state: "degraded" }, 0, 0.25],
    ["draining", { state: "draining" }, 0, 0],
    ["down", { state: "down" }, 0, 0],
    ["stopped", { state: "stopped" }, 0, 0],
    ["an unknown state word counts as healthy", { state: "weird" }, 0, 1],
    ["latency 0 ms", { latency: 0 }, 0, 1],
    ["latency 10 ms halves", { latency: 10 }, 0, 0.5],
    ["latency 90 ms", { latency: 90 }, 0, 0.1],
    ["degraded and 10 ms away", { state: "degraded", latency: 10 }, 0, 0.125],
    ["lag 50 ms is noise", { load: load({ lag: 50 }) }, 0, 1],
    ["lag 150 ms halves", { load: load({ lag: 150 }) }, 0, 0.5],
    ["lag 350 ms", { load: load({ lag: 350 }) }, 0, 0.25],
    ["cpu 0.8 is noise", { load: load({ cpu: 0.8 }) }, 0, 1],
    ["cpu 1.3", { load: load({ cpu: 1.3 }) }, 0, 0.5],
    ["lag and cpu multiply", { load: load({ lag: 150, cpu: 1.3 }) }, 0, 0.25],
    ["connections, sessions and queue do not count", { load: load({ connections: 9e3, queue: 9e3 }) }, 0, 1],
    ["avoided until later", { avoidUntil: 1000 }, 999, 0.001],
    ["avoidance over (now == avoidUntil)", { avoidUntil: 1000 }, 1000, 1],
    ["avoidance over", { avoidUntil: 1000 }, 5000, 1],
    ["avoided and degraded", { avoidUntil: 1000, state: "degraded" }, 0, 0.00025],
    ["avoided draining stays 0", { avoidUntil: 1000, state: "draining" }, 0, 0],
  ];
  it.each(cases)("%s", (_, v, now, expected) => {
    expect(weight(view(v), now)).toBeCloseTo(expected, 9);
  });
});

describe("weightedOrder()", () => {
  it("keeps every item exactly once", () => {
    const random = seededRandom(1);
    const items = ["a", "b", "c", "d", "e"];
    for (let i = 0; i < 100; i++) {
      const order = weightedOrder(items, (x) => (x === "c" ? 0 : 1), random);
      expect([...order].sort()).toEqual(items);
    }
  });

  it("puts zero-weight items last, whatever their draws", () => {
    const random = seededRandom(2);
    const w: Record<string, number> = { a: 0, b: 0.001, c: 0, d: 5 };
    for (let i = 0; i < 2000; i++) {
      const order = weightedOrder(Object.keys(w), (x) => w[x]!, random);
      expect(new Set(order.slice(2))).toEqual(new Set(["a", "c"]));
    }
  });

  it("zero-weight items come in random order among themselves", () => {
    const random = seededRandom(3);
    let aFirst = 0;
    for (let i = 0; i < 2000; i++) if (weightedOrder(["a", "b"], () => 0, random)[0] === "a") aFirst++;
    expect(aFirst).toBeGreaterThan(800);
    expect(aFirst).toBeLessThan(1200);
  });

  it("a draw of 0 from the random source does not break the order", () => {
    const order = weightedOrder(
      ["a", "b", "z"],
      (x) => (x === "z" ? 0 : 1),
      () => 0,
    );
    expect(order).toHaveLength(3);
    expect(order[2]).toBe("z");
  });

  it("first picks over 10,000 seeded draws are roughly proportional to the weights", () => {
    const random = seededRandom(42);
    const weights: Record<string, number> = { a: 4, b: 2, c: 1, d: 1, z: 0 };
    const total = 8;
    const firsts: Record<string, number> = { a: 0, b: 0, c: 0, d: 0, z: 0 };
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      const order = weightedOrder(Object.keys(weights), (x) => weights[x]!, random);
      firsts[order[0]!]!++;
      expect(order[4]).toBe("z");
    }
    expect(firsts.z).toBe(0);
    for (const k of ["a", "b", "c", "d"]) {
      const expected = weights[k]! / total;
      // Generous: ±4 percentage points (the standard error is under 0.5 points).
      expect(firsts[k]! / n).toBeGreaterThan(expected - 0.04);
      expect(firsts[k]! / n).toBeLessThan(expected + 0.04);
    }
  });

  it("a server avoided after a failure is almost never first", () => {
    const random = seededRandom(9);
    let avoidedFirst = 0;
    for (let i = 0; i < 10_000; i++) {
      const order = weightedOrder(
        [view({ address: "x", avoidUntil: 100 }), view({ address: "y" })],
        (s) => weight(s, 0),
        random,
      );
      if (order[0]!.address === "x") avoidedFirst++;
    }
    expect(avoidedFirst).toBeLessThan(50); // expected ~10 (weight 0.001 vs 1)
  });
});

describe("ServerPicker", () => {
  const nodes = (...addrs: Array<[string, string]>) =>
    addrs.map(([address, state], i) => ({ id: `n${i}`, address, state }));

  it("starts from the seeds", () => {
    const p = new ServerPicker(["s1:1", "s2:1"], 5000);
    expect(p.all.map((s) => [s.address, s.seed])).toEqual([
      ["s1:1", true],
      ["s2:1", true],
    ]);
  });

  it("topology adds servers, updates state and load, forgets non-seeds no longer listed, keeps seeds", () => {
    const p = new ServerPicker(["s1:1", "s2:1"], 5000);
    p.topology([
      { id: "n1", address: "s1:1", state: "healthy", load: load({ lag: 400 }) },
      { id: "n3", address: "x3:1", state: "degraded" },
      { id: "n4", address: "x4:1", state: "healthy" },
      { id: "nx", address: "", state: "healthy" }, // no address: ignored
    ]);
    expect(p.all.map((s) => s.address).sort()).toEqual(["s1:1", "s2:1", "x3:1", "x4:1"]);
    expect(p.get("x3:1")).toMatchObject({ id: "n3", state: "degraded", seed: false });
    expect(p.get("s1:1")).toMatchObject({ id: "n1", state: "healthy", seed: true });
    expect(p.get("s1:1")!.load?.lag).toBe(400);

    // The next view lists neither s1, s2 (seeds) nor x3 (learned).
    p.topology(nodes(["x4:1", "healthy"], ["x5:1", "healthy"]));
    expect(p.all.map((s) => s.address).sort()).toEqual(["s1:1", "s2:1", "x4:1", "x5:1"]);
    // A seed keeps what it knew.
    expect(p.get("s1:1")).toMatchObject({ id: "n1", state: "healthy" });

    p.topology([]);
    expect(p.all.map((s) => s.address).sort()).toEqual(["s1:1", "s2:1"]);
  });

  it("a topology entry without load keeps the load known before", () => {
    const p = new ServerPicker(["s1:1"], 5000);
    p.report("s1:1", "healthy", load({ cpu: 2 }));
    p.topology(nodes(["s1:1", "degraded"]));
    expect(p.get("s1:1")).toMatchObject({ state: "degraded", load: { cpu: 2 } });
  });

  it("failed() avoids a server for avoidFor; succeeded() clears it", () => {
    const p = new ServerPicker(["a:1", "b:1"], 5000);
    p.failed("a:1", 100);
    p.failed("a:1", 200);
    expect(p.get("a:1")).toMatchObject({ avoidUntil: 5200, failures: 2 });
    expect(weight(p.get("a:1")!, 5199)).toBeCloseTo(0.001, 9);
    expect(weight(p.get("a:1")!, 5200)).toBe(1);
    p.failed("b:1", 0, "draining");
    expect(p.get("b:1")!.state).toBe("draining");
    p.succeeded("a:1");
    expect(p.get("a:1")).toMatchObject({ avoidUntil: 0, failures: 0 });
  });

  it("latency() smooths samples (1/4 gain)", () => {
    const p = new ServerPicker(["a:1"], 5000);
    p.latency("a:1", 100);
    expect(p.get("a:1")!.latency).toBe(100);
    p.latency("a:1", 20);
    expect(p.get("a:1")!.latency).toBe(80);
  });

  it("order(): the excluded server goes last, even after zero-weight ones", () => {
    const p = new ServerPicker(["a:1", "b:1", "c:1", "d:1"], 5000);
    p.report("d:1", "down", load({}));
    const random = seededRandom(5);
    for (let i = 0; i < 500; i++) {
      const o = p.order(0, random, "a:1");
      expect(o).toHaveLength(4);
      expect(o[3]).toBe("a:1");
      expect(o[2]).toBe("d:1");
    }
    // Excluding an unknown address changes nothing.
    expect(p.order(0, seededRandom(5), "nope:1")).toHaveLength(4);
  });

  it("order(): spreads first picks over equal servers", () => {
    const p = new ServerPicker(["a:1", "b:1", "c:1"], 5000);
    const random = seededRandom(11);
    const firsts = new Map<string, number>();
    for (let i = 0; i < 9000; i++) {
      const f = p.order(0, random)[0]!;
      firsts.set(f, (firsts.get(f) ?? 0) + 1);
    }
    for (const a of ["a:1", "b:1", "c:1"]) {
      expect(firsts.get(a)!).toBeGreaterThan(2600);
      expect(firsts.get(a)!).toBeLessThan(3400);
    }
  });
});
