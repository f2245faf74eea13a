import { afterEach, describe, expect, it } from "vitest";
import { resolveConfig } from "../../../src/config/resolve.ts";
import { HealthEngine } from "../../../src/health/engine.ts";
import { heartbeatProbe } from "../../../src/health/probes/heartbeat.ts";
import { defaultRegistry } from "../../../src/health/probes/index.ts";
import type { Transition } from "../../../src/health/types.ts";
import { echoApp } from "../../../src/node/apps/echo.ts";
import { LifelineNode } from "../../../src/node/node.ts";
import { MemoryStore } from "../../../src/store/memory.ts";
import { until } from "../../support/node-client.ts";
import { faultyProxy } from "../../support/proxy.ts";
import { unpluggable } from "../../support/unpluggable-store.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function node(port = 0) {
  const n = new LifelineNode({ id: "hb1", port, store: new MemoryStore(), app: echoApp });
  await n.start();
  cleanups.push(() => n.stop());
  return n;
}

function watch(address: string) {
  const registry = defaultRegistry();
  const engine = new HealthEngine(
    resolveConfig({ targets: [{ id: "n", address: `lifeline://${address}?heartbeat=100` }] }, registry),
    {
      registry,
    },
  );
  const seen: Transition[] = [];
  engine.on("state", (t) => seen.push(t));
  engine.start();
  cleanups.push(() => engine.stop());
  return { engine, seen };
}

describe("heartbeat probe", () => {
  it("parses lifeline:// targets and validates its fields", () => {
    expect(heartbeatProbe.fromTarget?.("lifeline://127.0.0.1:7000")).toMatchObject({
      address: "127.0.0.1:7000",
      heartbeat: 500,
    });
    expect(heartbeatProbe.fromTarget?.("lifeline://[::1]:7000?heartbeat=200")).toMatchObject({
      address: "[::1]:7000",
      heartbeat: 200,
    });
    expect(heartbeatProbe.fromTarget?.("tcp://x:1")).toBeUndefined();
    expect(() =>
      resolveConfig(
        { targets: [{ checks: [{ type: "heartbeat", address: "x:1", suspectPhi: 9 }] }] },
        defaultRegistry(),
      ),
    ).toThrow(/downPhi/);
  });

  it("is healthy while heartbeats flow, with the node's id and load in the result", async () => {
    const n = await node();
    const { engine } = watch(n.address);
    await until(() => engine.target("n")?.state === "healthy", 5000);
    const last = engine.target("n")!.checks[0]!.last!;
    expect(last.status).toBe("pass");
    expect(last.detail).toMatchObject({ nodeId: "hb1", state: "healthy" });
    const results = engine.history("n")!.results.length;
    await new Promise((r) => setTimeout(r, 500));
    expect(engine.history("n")!.results.length).toBeGreaterThan(results + 2); // one per heartbeat
  });

  it("a node whose store is unavailable is degraded, with the node's reason in the result", async () => {
    const store = unpluggable(new MemoryStore());
    const n = new LifelineNode({ id: "hb2", port: 0, store, app: echoApp, storeCheckInterval: 20 });
    await n.start();
    cleanups.push(() => n.stop());
    const { engine } = watch(n.address);
    await until(() => engine.target("n")?.state === "healthy", 5000);
    store.down = true;
    await until(() => engine.target("n")?.state === "degraded", 5000);
    const last = engine.target("n")!.checks[0]!.last!;
    expect(last).toMatchObject({ status: "warn", kind: "overloaded" });
    expect(last.message).toBe("node reports itself degraded: store unavailable: test://unpluggable");
    store.down = false;
    await until(() => engine.target("n")?.state === "healthy", 5000);
  });

  it("a node that goes away (connection closed, reconnect refused) is down at once, kind refused", async () => {
    const n = await node();
    const { engine, seen } = watch(n.address);
    await until(() => engine.target("n")?.state === "healthy", 5000);
    const stoppedAt = Date.now();
    await n.stop();
    await until(() => engine.target("n")?.state === "down", 5000);
    expect(Date.now() - stoppedAt).toBeLessThan(2000);
    const down = seen.find((t) => t.to === "down")!;
    expect(down.kind).toBe("refused");
    // No suspicion: the evidence is conclusive. (The stopping node may first announce that it
    // is draining, which makes it degraded.)
    expect(["healthy", "degraded"]).toContain(down.from);
    expect(down.reason).toContain("reconnect was refused");
  });

  it("a node that comes back is healthy again", async () => {
    const n = await node();
    const port = n.port;
    const { engine } = watch(n.address);
    await until(() => engine.target("n")?.state === "healthy", 5000);
    await n.stop();
    await until(() => engine.target("n")?.state === "down", 5000);
    await node(port);
    await until(() => engine.target("n")?.state === "healthy", 15_000);
  });

  it("a frozen node is suspect, then down, and while silent the probe does not spin", async () => {
    const n = await node();
    const proxy = await faultyProxy(n.address);
    cleanups.push(() => proxy.close());
    const { engine, seen } = watch(proxy.address);
    await until(() => engine.target("n")?.state === "healthy", 5000);
    const frozenAt = Date.now();
    proxy.setMode("freeze");
    await until(() => engine.target("n")?.state === "down", 10_000);
    const tookMs = Date.now() - frozenAt;
    expect(tookMs).toBeLessThan(8000); // phi with 100 ms heartbeats: ~1-2 s here; generous
    const down = seen.find((t) => t.to === "down")!;
    expect(down.kind).toBe("timeout");
    expect(down.reason).toMatch(/last timeout: (?!after)/); // what the probe saw, not an engine deadline
    expect(seen.some((t) => t.to === "suspect")).toBe(true);
    // Still silent: a few results over 3 s, not thousands.
    let during = 0;
    const onResult = () => during++;
    engine.on("result", onResult);
    await new Promise((r) => setTimeout(r, 3000));
    engine.off("result", onResult);
    expect(during).toBeLessThan(40);
    expect(engine.target("n")?.state).toBe("down");
    // Thawed, the node is healthy again.
    proxy.setMode("pass");
    await until(() => engine.target("n")?.state === "healthy", 20_000);
  }, 40_000);

  it("a broken connection whose reconnect is reset is down at once, without suspicion", async () => {
    const n = await node();
    const proxy = await faultyProxy(n.address);
    cleanups.push(() => proxy.close());
    const { engine, seen } = watch(proxy.address);
    await until(() => engine.target("n")?.state === "healthy", 5000);
    const at = Date.now();
    proxy.setMode("reset");
    await until(() => engine.target("n")?.state === "down", 5000);
    expect(Date.now() - at).toBeLessThan(2000);
    const down = seen.find((t) => t.to === "down")!;
    expect(down.from).toBe("healthy");
    expect(down.reason).toContain("reconnect was reset");
  });
});
