import { describe, expect, it } from "vitest";
import { Keyring } from "../../src/membership/keyring.ts";
import { Membership } from "../../src/membership/membership.ts";
import { startCluster } from "./cluster-support.ts";

const k1 = Keyring.generateKey();
const k2 = Keyring.generateKey();
const ids = ["n1", "n2", "n3"];

describe("membership security (AES-256-GCM keyring)", () => {
  it("drops and counts messages with a bad tag, in plaintext, from another cluster or malformed", async () => {
    const c = await startCluster(ids, { keyring: () => new Keyring([k1]) });
    expect(await c.until(() => c.converged(), 5000)).toBeDefined();
    const n1 = c.node("n1");
    const seed = [c.addressOf("n1")];

    const intruder = c.add("wrong-key", new Keyring([k2]));
    await expect(c.join(intruder, seed)).rejects.toMatchObject({ code: "LL_MEMBERSHIP_JOIN_FAILED" });
    expect(n1.counters().droppedBadTag).toBeGreaterThan(0);

    const plain = c.add("no-key", null);
    await expect(c.join(plain, seed)).rejects.toMatchObject({ code: "LL_MEMBERSHIP_JOIN_FAILED" });
    expect(n1.counters().droppedUnencrypted).toBeGreaterThan(0);

    const foreign = new Membership({
      id: "other-cluster",
      transport: c.net.endpoint("other:7946"),
      clock: c.clock,
      keyring: new Keyring([k1]),
      config: { clusterName: "elsewhere" },
    });
    c.nodes.push(foreign);
    await expect(c.join(foreign, seed)).rejects.toMatchObject({ code: "LL_MEMBERSHIP_JOIN_FAILED" });
    expect(n1.counters().droppedNonMember).toBeGreaterThan(0);

    const raw = c.net.endpoint("raw:1");
    raw.sendPacket(c.addressOf("n1"), Uint8Array.of(1, 2, 3));
    raw.sendPacket(c.addressOf("n1"), Uint8Array.of());
    await c.clock.advance(100);
    expect(n1.counters().droppedMalformed).toBe(2);

    await c.clock.advance(20_000);
    // The cluster never learned of any of them and is undisturbed.
    for (const o of ids)
      expect(
        c
          .node(o)
          .members()
          .map((m) => m.id)
          .sort(),
      ).toEqual(ids);
    expect(c.converged(ids)).toBe(true);
    expect(c.events.filter((e) => ids.includes(e.observer) && e.event.member.state !== "alive")).toEqual([]);
    await c.stop();
  });

  it("rotates keys without a flag day: install everywhere, use everywhere, remove the old one", async () => {
    const rings = new Map(ids.map((id) => [id, new Keyring([k1])]));
    const c = await startCluster(ids, { keyring: (id) => rings.get(id) });
    await c.until(() => c.converged(), 5000);

    for (const r of rings.values()) r.install(k2);
    await c.clock.advance(5000);
    rings.get("n1")!.use(k2); // n1 now writes with k2, the others can read it
    await c.clock.advance(10_000);
    for (const r of rings.values()) r.use(k2);
    await c.clock.advance(5000);
    for (const r of rings.values()) r.remove(k1);
    await c.clock.advance(20_000);

    expect(c.converged()).toBe(true);
    expect(c.events.filter((e) => e.event.member.state !== "alive")).toEqual([]);
    expect(c.nodes.reduce((s, n) => s + n.counters().droppedBadTag, 0)).toBe(0);

    // A member still on the old key alone is now locked out.
    const stale = c.add("stale", new Keyring([k1]));
    await expect(c.join(stale, [c.addressOf("n2")])).rejects.toMatchObject({
      code: "LL_MEMBERSHIP_JOIN_FAILED",
    });
    expect(c.node("n2").counters().droppedBadTag).toBeGreaterThan(0);
    await c.stop();
  });

  it("a member that skips a step is cut off and counted, then readmitted once it has the key", async () => {
    const rings = new Map(ids.map((id) => [id, new Keyring([k1])]));
    const c = await startCluster(ids, { keyring: (id) => rings.get(id) });
    await c.until(() => c.converged(), 5000);
    // n1 switches to k2 before n3 has installed it: n3 can no longer read n1.
    rings.get("n1")!.install(k2);
    rings.get("n2")!.install(k2);
    rings.get("n1")!.use(k2);
    await c.clock.advance(3000);
    expect(c.node("n3").counters().droppedBadTag).toBeGreaterThan(0);
    rings.get("n3")!.install(k2);
    await c.clock.advance(60_000);
    expect(c.converged()).toBe(true);
    await c.stop();
  });
});
