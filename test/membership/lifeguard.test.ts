import { describe, expect, it } from "vitest";
import { Membership } from "../../src/membership/membership.ts";
import { MemoryNetwork } from "../../src/membership/memory-network.ts";
import { seededRandom } from "../../src/util/clock.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";
import { startCluster } from "./cluster-support.ts";

const ids = ["n1", "n2", "n3", "n4", "n5"];

describe("Lifeguard local health (fake clock)", () => {
  it("rises when the local node's acks and nacks are lost, slows its probing, and recovers", async () => {
    const c = await startCluster(ids);
    await c.until(() => c.converged(), 5000);
    const scores: number[] = [];
    c.node("n1").on("health", (h) => scores.push(h.score));
    // Everything sent to n1 is lost: its pings go out, but no ack or nack comes back.
    for (const id of ids.slice(1)) c.net.setLink(c.addressOf(id), c.addressOf("n1"), { loss: 1 }, false);
    await c.clock.advance(10_000);
    const before = { n1: c.node("n1").counters().probes, n2: c.node("n2").counters().probes };
    await c.clock.advance(30_000);
    const probes = {
      n1: c.node("n1").counters().probes - before.n1,
      n2: c.node("n2").counters().probes - before.n2,
    };
    expect(c.node("n1").healthScore).toBe(7); // awarenessMaxMultiplier − 1
    expect(Math.max(...scores)).toBe(7);
    // Its period is now 8 s instead of 1 s: a healthy member probes ~30 times meanwhile.
    expect(probes.n1).toBeLessThanOrEqual(5);
    expect(probes.n2).toBeGreaterThanOrEqual(25);
    // Each missing nack counted (3 helpers asked per failed probe).
    expect(c.node("n1").counters().nacksReceived).toBe(0);

    // The links come back: successful probes lower the score one by one.
    for (const id of ids.slice(1)) c.net.setLink(c.addressOf(id), c.addressOf("n1"), { loss: 0 }, false);
    const healed = await c.until(() => c.node("n1").healthScore === 0, 120_000, 500);
    expect(healed).toBeDefined();
    await c.until(() => c.converged(), 60_000, 500);
    expect(c.converged()).toBe(true);
    await c.stop();
  });

  it("nacks from live intermediaries keep the score down when only the target is gone", async () => {
    const c = await startCluster(ids);
    await c.until(() => c.converged(), 5000);
    c.kill("n5");
    await c.clock.advance(20_000);
    const counters = c.nodes.filter((n) => n.id !== "n5").map((n) => n.counters());
    expect(counters.reduce((s, x) => s + x.nacksReceived, 0)).toBeGreaterThan(0);
    for (const n of c.nodes.filter((n) => n.id !== "n5")) expect(n.healthScore).toBe(0);
    await c.stop();
  });

  it("rises when the protocol timer runs late (a stalled event loop)", async () => {
    const clock = new FakeClock();
    const net = new MemoryNetwork({ clock, random: seededRandom(1) });
    const m = new Membership({
      id: "solo",
      transport: net.endpoint("solo:1"),
      clock,
      random: seededRandom(2),
    });
    m.start();
    await clock.advance(5000);
    expect(m.healthScore).toBe(0);
    clock.stall(2000);
    await clock.advance(10);
    expect(m.healthScore).toBe(1);
    await m.stop();
  });
});
