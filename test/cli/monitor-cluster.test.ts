import { afterEach, describe, expect, it } from "vitest";
import { startMonitor } from "../../src/cli/monitor.ts";
import { gossipNode } from "../support/gossip-node.ts";
import { memoryIO } from "../support/io.ts";
import { until } from "../support/node-client.ts";

/**
 * `lifeline monitor --cluster ADDR`: the monitor is given one node and watches every node
 * the cluster's gossip knows, adding nodes that join; when the node it follows goes away it
 * follows another.
 */
describe("monitor --cluster", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function start(id: string, seeds: string[]) {
    const n = await gossipNode(id, seeds);
    cleanups.push(() => n.stop());
    return n;
  }

  it("watches every node of the cluster through one, follows joins, and survives losing that one", async () => {
    const a = await start("a", []);
    const b = await start("b", [a.gossip.address]);
    const io = memoryIO();
    const m = await startMonitor(
      [],
      { cluster: a.node.address, json: true, admin: false, history: "off" },
      io,
    );
    cleanups.push(() => m.stop());

    await until(() => m.engine.ids().sort().join() === "a,b", 15_000, "a and b watched");
    await until(
      () => m.engine.target("a")?.state === "healthy" && m.engine.target("b")?.state === "healthy",
      15_000,
      "a, b healthy",
    );
    expect(io.out()).toContain('"type":"config"');

    // A node joins the cluster: the monitor watches it without being told.
    const c = await start("c", [b.gossip.address]);
    await until(() => m.engine.ids().includes("c"), 15_000, "c watched");
    await until(() => m.engine.target("c")?.state === "healthy", 15_000, "c healthy");

    // The node the monitor follows stops: it is seen down, and the monitor follows b or c,
    // still hearing of the cluster (a fourth node joins and is picked up).
    await a.stop();
    await until(() => m.engine.target("a")?.state === "down", 15_000, "a down");
    const d = await start("d", [c.gossip.address]);
    await until(() => m.engine.ids().includes("d"), 20_000, "d watched after a went away");
    expect(d.node.state).toBe("healthy");
  }, 60_000);

  it("refuses a --cluster that is not host:port", async () => {
    await expect(
      startMonitor([], { cluster: "nope", admin: false, history: "off" }, memoryIO()),
    ).rejects.toThrow(/--cluster: "nope"/);
  });
});
