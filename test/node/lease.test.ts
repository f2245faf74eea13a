import { describe, expect, it } from "vitest";
import { echoApp } from "../../src/node/apps/echo.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { OWNER_LEASE } from "../../src/store/types.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";
import { TestClient } from "../support/node-client.ts";

describe("owner lease", () => {
  it("a live node renews the sessions it holds; once it stops, they run out a TTL + lease later", async () => {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const node = new LifelineNode({ id: "l1", port: 0, store, app: echoApp, clock, sessionTtl: 1000 });
    await node.start();
    const c = await TestClient.connect(node.address);
    try {
      const id = c.session.id;
      const first = (await store.getSession(id))!.expiresAt!;
      expect(first).toBe(clock.wall() + 1000 + OWNER_LEASE);
      await clock.advance(OWNER_LEASE); // three renewals
      const renewed = (await store.getSession(id))!.expiresAt!;
      expect(renewed).toBeGreaterThan(first);
      expect(renewed).toBeGreaterThanOrEqual(clock.wall() + 1000 + (OWNER_LEASE * 2) / 3);
      // A crash: no more renewals (the node's timers never fire again), no release.
      expect(await store.sweep(renewed - 1)).toEqual([]);
      expect(await store.sweep(renewed + 1)).toEqual([id]);
    } finally {
      c.conn.destroy();
      await node.stop();
    }
  });
});
