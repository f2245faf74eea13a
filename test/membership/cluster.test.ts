import { describe, expect, it } from "vitest";
import { suspicionTimeout } from "../../src/membership/math.ts";
import { startCluster, type TestCluster } from "./cluster-support.ts";

const ids = (n: number) => Array.from({ length: n }, (_, i) => `n${i + 1}`);

/** Observers (other than `target`) that ever saw `target` in `state`. */
function sawState(c: TestCluster, target: string, state: string): string[] {
  return [
    ...new Set(
      c.events
        .filter((e) => e.event.member.id === target && e.event.member.state === state)
        .map((e) => e.observer),
    ),
  ];
}

describe("membership on the in-memory network (fake clock)", () => {
  it.each([3, 10])("a cluster of %d converges after joining through one seed", async (n) => {
    const c = await startCluster(ids(n));
    const took = await c.until(() => c.converged(), 10_000);
    expect(took).toBeDefined();
    expect(took!).toBeLessThan(3000);
    // Everyone has everyone's metadata too.
    expect(c.node("n1").member(`n${n}`)!.meta).toEqual({ client: `n${n}:7400` });
    // Quiet afterwards: nobody suspected anybody.
    await c.clock.advance(30_000);
    expect(c.events.filter((e) => e.event.member.state !== "alive")).toEqual([]);
    await c.stop();
  });

  it("a killed member is suspected, then declared dead by every member within the predicted bound", async () => {
    const n = 10;
    const c = await startCluster(ids(n));
    await c.until(() => c.converged(), 5000);
    const killedAt = c.clock.now();
    c.kill("n7");
    const survivors = ids(n).filter((id) => id !== "n7");
    const took = await c.until(() => survivors.every((o) => c.stateOf(o, "n7") === "dead"), 60_000);
    // Bound: some member probes n7 within at most two rounds of the shuffled order (2·(N−1)
    // periods, each node's own worst case), the probe fails by the end of its period, and the
    // suspicion lasts at most its longest timeout (6 × 4 s at N = 10), plus 1 s of gossip.
    const min = suspicionTimeout(4, n, 1000);
    const bound = 2 * (n - 1) * 1000 + 1000 + 6 * min + 1000;
    expect(took).toBeDefined();
    expect(took!).toBeLessThanOrEqual(bound);
    const firstSuspect = c.events.find(
      (e) => e.event.member.id === "n7" && e.event.member.state === "suspect",
    )!;
    expect(firstSuspect.at - killedAt).toBeLessThan(2 * (n - 1) * 1000 + 1000);
    expect(sawState(c, "n7", "dead").sort()).toEqual([...survivors].sort());
    // With confirmations from independent suspectors the timeout shrinks well below its maximum.
    expect(took!).toBeLessThan(15_000);
    // No one else was hurt.
    expect(c.events.filter((e) => e.event.member.id !== "n7" && e.event.member.state !== "alive")).toEqual(
      [],
    );
    await c.stop();
  });

  it("a member frozen for less than its suspicion timeout refutes and is never declared dead", async () => {
    const c = await startCluster(ids(5));
    await c.until(() => c.converged(), 5000);
    c.net.freeze(c.addressOf("n3"));
    // Long enough to be suspected (a probe period or two), shorter than the 2 s minimum timeout.
    await c.clock.advance(1500);
    c.net.thaw(c.addressOf("n3"));
    await c.clock.advance(30_000);
    expect(sawState(c, "n3", "suspect").length).toBeGreaterThan(0);
    expect(c.events.filter((e) => e.event.member.state === "dead")).toEqual([]);
    expect(c.converged()).toBe(true);
    expect(c.node("n3").local().incarnation).toBeGreaterThan(0);
    expect(c.node("n3").counters().refutations).toBeGreaterThan(0);
    await c.stop();
  });

  it("a partition long enough for deaths heals: both sides find each other again", async () => {
    const c = await startCluster(ids(6));
    await c.until(() => c.converged(), 5000);
    const left = ["n1", "n2", "n3"];
    const right = ["n4", "n5", "n6"];
    c.net.partition(left.map(c.addressOf), right.map(c.addressOf));
    await c.clock.advance(60_000);
    for (const o of left) for (const t of right) expect(c.stateOf(o, t)).toBe("dead");
    for (const o of left) for (const t of left) expect(c.stateOf(o, t)).toBe("alive");
    c.net.heal();
    const took = await c.until(() => c.converged(), 120_000, 500);
    expect(took).toBeDefined();
    await c.stop();
  });

  it("a graceful leave is seen as left, never dead", async () => {
    const c = await startCluster(ids(5));
    await c.until(() => c.converged(), 5000);
    const stream = c.node("n1").events();
    const leaving = c.node("n2").leave(5000);
    await c.clock.advance(2000);
    await leaving;
    await c.node("n2").stop();
    await c.clock.advance(10_000);
    for (const o of ["n1", "n3", "n4", "n5"]) expect(c.stateOf(o, "n2")).toBe("left");
    const first = await stream.next();
    expect(first.value).toMatchObject({ member: { id: "n2", state: "left" }, previous: "alive" });
    await stream.return();
    await c.clock.advance(30_000);
    // Forgotten after gossipToTheDeadTime, and never suspected or declared dead on the way.
    expect(c.stateOf("n1", "n2")).toBeUndefined();
    expect(
      c.events.filter(
        (e) => e.event.member.id === "n2" && ["dead", "suspect"].includes(e.event.member.state),
      ),
    ).toEqual([]);
    expect(
      c.events.find(
        (e) => e.observer === "n1" && e.event.member.id === "n2" && e.event.member.state === "left",
      )!.event.reason,
    ).toBe("left the cluster");
    await c.stop();
  });

  it("a member that restarts under its old id after being declared dead refutes its death", async () => {
    const c = await startCluster(ids(4));
    await c.until(() => c.converged(), 5000);
    c.kill("n4");
    await c.until(() => c.stateOf("n1", "n4") === "dead", 60_000);
    const again = c.add("n4");
    await c.join(again, [c.addressOf("n1")]);
    const took = await c.until(() => c.converged(), 10_000);
    expect(took).toBeDefined();
    expect(again.local().incarnation).toBeGreaterThan(0);
    await c.stop();
  });

  it("metadata updates reach every member as `update` events", async () => {
    const c = await startCluster(ids(5));
    await c.until(() => c.converged(), 5000);
    const seen: string[] = [];
    for (const n of c.nodes) n.on("update", (e) => e.member.id === "n1" && seen.push(n.id));
    c.node("n1").updateMeta({ client: "n1:7400", load: "0.75" });
    await c.clock.advance(3000);
    expect(seen.sort()).toEqual(["n1", "n2", "n3", "n4", "n5"]);
    expect(c.node("n4").member("n1")!.meta.load).toBe("0.75");
    await c.stop();
  });

  it("a member that missed the refutation hears the alive again when it gossips its stale verdict", async () => {
    // Push-pull off: only gossip can repair the stale view (as between two push-pulls).
    const names = ["a", "b", "c", "d", "e"];
    for (let seed = 1; seed <= 10; seed++) {
      const c = await startCluster(names, { seed, config: { pushPullInterval: 0, reconnectInterval: 0 } });
      await c.until(() => c.converged(), 10_000);
      c.net.freeze(c.addressOf("e"));
      await c.clock.advance(1500);
      const suspector = names.find((o) => o !== "e" && c.stateOf(o, "e") === "suspect");
      if (!suspector) {
        c.net.thaw(c.addressOf("e"));
        await c.stop();
        continue;
      }
      // The suspector hears nothing while e thaws and refutes: it misses incarnation 1.
      for (const o of names)
        if (o !== suspector) c.net.setLink(c.addressOf(o), c.addressOf(suspector), { loss: 1 }, false);
      c.net.thaw(c.addressOf("e"));
      await c.clock.advance(3000);
      for (const o of names)
        if (o !== suspector) c.net.setLink(c.addressOf(o), c.addressOf(suspector), { loss: 0 }, false);
      expect(c.node("e").local().incarnation).toBeGreaterThan(0);
      // Its stale suspicion or death of e reaches e (gossiped, or riding the ack to e's next
      // ping), which gossips its alive again: the suspector's view is repaired within seconds
      // (it stayed wrong for good before).
      const healed = await c.until(() => c.stateOf(suspector, "e") === "alive", 15_000);
      expect(healed, `seed ${seed}: ${suspector} still sees e ${c.stateOf(suspector, "e")}`).toBeDefined();
      expect(c.node("e").counters().reassertions).toBeGreaterThan(0);
      for (const o of names) if (o !== "e") expect(c.stateOf(o, "e"), o).toBe("alive");
      await c.stop();
      return;
    }
    throw new Error("no seed made a suspector (the scenario did not happen)");
  });
});
