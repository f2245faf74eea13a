import { afterEach, describe, expect, it } from "vitest";
import { gossipSetup } from "../../src/cli/node-gossip.ts";
import { loadChanged, topologyState } from "../../src/node/gossip.ts";
import { gossipNode } from "../support/gossip-node.ts";
import { TestClient, until } from "../support/node-client.ts";

describe("gossip view: pure parts", () => {
  it.each([
    [{ state: "alive", meta: {} }, "healthy"],
    [{ state: "alive", meta: { state: "degraded" } }, "degraded"],
    [{ state: "alive", meta: { state: "draining" } }, "draining"],
    [{ state: "suspect", meta: { state: "healthy" } }, "suspect"],
    [{ state: "dead", meta: { state: "healthy" } }, "down"],
    [{ state: "left", meta: { state: "draining" } }, "down"],
  ] as const)("member %j shows as %s", (m, want) => {
    expect(topologyState(m)).toBe(want);
  });

  const base = { conns: "100", sessions: "100", queue: "0", lag: "1.0", cpu: "0.10" };
  it.each([
    ["nothing moved", {}, false],
    ["connections +10 % (under a fifth)", { conns: "110" }, false],
    ["connections +25 %", { conns: "125" }, true],
    ["a few connections on an idle node", { conns: "5" }, true],
    ["queue +50", { queue: "50" }, false],
    ["queue +100", { queue: "100" }, true],
    ["lag crosses 50 ms", { lag: "60.0" }, true],
    ["lag moves below 50 ms", { lag: "40.0" }, false],
    ["CPU +0.3 of a core", { cpu: "0.40" }, true],
  ] as const)("%s → announce %s", (_what, change, want) => {
    expect(loadChanged(base, { ...base, ...change })).toBe(want);
  });
  it("small absolute moves on an idle node are not news", () => {
    expect(loadChanged({ ...base, conns: "0" }, { ...base, conns: "3" })).toBe(false);
  });
});

describe("nodes that gossip (--join)", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function start(id: string, seeds: string[]) {
    const n = await gossipNode(id, seeds);
    cleanups.push(() => n.stop());
    return n;
  }

  const stateIn = (c: TestClient, id: string) => c.topology?.nodes.find((n) => n.id === id)?.state;

  it("push the members to clients as TOPOLOGY: joined, draining then gone, and crashed", async () => {
    const a = await start("a", []);
    const b = await start("b", [a.gossip.address]);
    const c = await start("c", [a.gossip.address]);
    const client = await TestClient.connect(a.node.address);
    cleanups.push(async () => client.conn.destroy());

    await until(
      () => stateIn(client, "b") === "healthy" && stateIn(client, "c") === "healthy",
      15_000,
      "b, c",
    );
    const nodes = client.topology!.nodes;
    expect(nodes.find((n) => n.id === "b")?.address).toBe(b.node.address);
    expect(nodes.find((n) => n.id === "c")?.load).toMatchObject({ connections: 0, sessions: 0 });

    // b drains: its state is gossiped at once, then it leaves (gone, not waited out as dead).
    const drained = b.node.drain("maintenance", 500);
    await until(() => stateIn(client, "b") === "draining", 10_000, "b draining");
    await drained;
    await b.gossip.stop();
    await until(() => stateIn(client, "b") === "down", 5000, "b left");
    expect(a.gossip.membership.member("b")?.state).toBe("left");

    // c crashes: no leave; the others suspect it, then declare it dead.
    await c.gossip.membership.stop();
    await c.node.stop();
    await until(() => stateIn(client, "c") === "down", 30_000, "c dead");
    expect(a.gossip.membership.member("c")?.state).toBe("dead");
  }, 60_000);

  it("refuses --peers with --join, and bad gossip flags, naming the flag", () => {
    expect(() => gossipSetup({ join: "nope" }, "127.0.0.1", {})).toThrow(/--join: "nope"/);
    expect(() => gossipSetup({ gossip: "x" }, "127.0.0.1", {})).toThrow(/--gossip: "x"/);
    expect(() => gossipSetup({ join: "a:1", gossipPreset: "fast" }, "127.0.0.1", {})).toThrow(
      /--gossip-preset must be one of lan, wan, local/,
    );
    expect(() => gossipSetup({ join: "a:1" }, "127.0.0.1", { LIFELINE_GOSSIP_KEYS: "short" })).toThrow(
      /gossip keys/,
    );
    expect(gossipSetup({}, "127.0.0.1", {})).toBeUndefined();
  });
});
