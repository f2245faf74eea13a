import { afterEach, describe, expect, it } from "vitest";
import { startNodeAdmin } from "../../src/admin/node-admin.ts";
import { echoApp } from "../../src/node/apps/echo.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { TestClient, until } from "../support/node-client.ts";
import { unpluggable } from "../support/unpluggable-store.ts";

describe("a node whose store becomes unavailable", () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("says degraded with the reason, acknowledges nothing it could not store, and recovers", async () => {
    const inner = new MemoryStore();
    const store = unpluggable(inner);
    const node = new LifelineNode({ id: "s1", port: 0, store, app: echoApp, storeCheckInterval: 20 });
    await node.start();
    cleanups.push(() => node.stop());
    const admin = await startNodeAdmin({ listen: "127.0.0.1:0", node });
    cleanups.push(() => admin.close());
    const states: string[] = [];
    node.on("state", (s) => states.push(s));

    const c = await TestClient.connect(node.address);
    cleanups.push(() => c.conn.destroy());
    expect((await c.send("one"))?.toString()).toBe("one");
    expect((await fetch(`${admin.url}/readyz`)).status).toBe(200);

    store.down = true;
    await until(() => node.state === "degraded", 5000, "degraded");
    expect(node.reason).toBe("store unavailable: test://unpluggable");
    expect(node.heartbeatFrame()).toMatchObject({ state: "degraded", reason: node.reason });
    expect(node.topology().nodes[0]).toMatchObject({ id: "s1", state: "degraded", reason: node.reason });
    expect(node.counters.storeOutages).toBe(1);
    const ready = await fetch(`${admin.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain("store unavailable");

    // A message now cannot be committed: no acknowledgement, the connection is cut with
    // LL_STORE so the client goes elsewhere (or back, later) and resends it.
    let acked = false;
    void c.send("two").then(() => {
      acked = true;
    });
    await until(() => c.closed, 5000, "connection cut");
    expect(acked).toBe(false);
    expect(c.errors.map((e) => e.code)).toContain("LL_STORE");
    expect((await inner.getSession(c.session.id))?.lastClientSeq).toBe(1);

    store.down = false;
    await until(() => node.state === "healthy", 5000, "healthy again");
    expect(node.reason).toBeUndefined();
    expect(node.heartbeatFrame()).not.toHaveProperty("reason");
    expect((await fetch(`${admin.url}/readyz`)).status).toBe(200);
    expect(states).toEqual(["degraded", "healthy"]);

    // The client resumes and resends: processed once, now acknowledged.
    await c.resume(node.address);
    expect((await c.sendAs(2, "two"))?.toString()).toBe("two");
    expect((await inner.getSession(c.session.id))?.lastClientSeq).toBe(2);
  });

  it("stays draining (not degraded) when its store fails during a drain", async () => {
    const store = unpluggable(new MemoryStore());
    const node = new LifelineNode({ id: "s2", port: 0, store, app: echoApp, storeCheckInterval: 20 });
    await node.start();
    cleanups.push(() => node.stop());
    // A client that ignores GOAWAY keeps the drain going until its deadline.
    const c = await TestClient.connect(node.address);
    cleanups.push(() => c.conn.destroy());
    const draining = node.drain("maintenance", 300);
    store.down = true;
    await new Promise((r) => setTimeout(r, 60));
    expect(node.state).toBe("draining");
    expect(node.reason).toBe("maintenance");
    await draining;
    expect(node.state).toBe("stopped");
  });
});
