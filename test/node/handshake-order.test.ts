import { describe, expect, it } from "vitest";
import { echoApp } from "../../src/node/apps/echo.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { SessionRecord } from "../../src/store/types.ts";
import { TestClient } from "../support/node-client.ts";

/** A store whose session creation takes a while (a busy SQLite file). */
class SlowStore extends MemoryStore {
  override async createSession(record: SessionRecord): Promise<void> {
    await new Promise((r) => setTimeout(r, 200));
    return super.createSession(record);
  }
}

describe("handshake order", () => {
  it("TOPOLOGY and GOAWAY never overtake the WELCOME of a handshake in progress", async () => {
    const node = new LifelineNode({
      id: "h1",
      port: 0,
      store: new SlowStore(),
      app: echoApp,
      drainDeadline: 500,
    });
    await node.start();
    try {
      const connecting = TestClient.connect(node.address);
      await new Promise((r) => setTimeout(r, 50)); // HELLO is being answered
      node.setPeers([{ id: "h2", address: "127.0.0.1:1", state: "healthy" }]);
      const c = await connecting; // would fail with "expected WELCOME, got TOPOLOGY"
      expect(c.conn.welcome.nodeId).toBe("h1");
      await new Promise((r) => setTimeout(r, 50));
      expect(c.topology?.nodes.map((n) => n.id)).toEqual(["h1", "h2"]);
      // A drain during another handshake: GOAWAY comes right after that client's WELCOME.
      const connectingLate = TestClient.connect(node.address);
      await new Promise((r) => setTimeout(r, 50));
      const draining = node.drain("test");
      const late = await connectingLate;
      await new Promise((r) => setTimeout(r, 50));
      expect(late.goaway).toMatchObject({ type: "goaway", reason: "test" });
      expect(late.goaway!.deadline).toBeLessThanOrEqual(500);
      late.close();
      await draining;
    } finally {
      await node.stop();
    }
  });
});
