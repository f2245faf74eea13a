import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LocalCluster } from "../../src/cli/local-cluster.ts";
import { createClient, type LifelineClient } from "../../src/client/client.ts";

const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
const dir = mkdtempSync(join(base, "lifeline-spread-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const N = 500;

describe("herd", () => {
  it("500 clients on a node that is killed spread over the survivors (none over 65%), all resumed, nothing lost", async () => {
    const cluster = new LocalCluster({ store: `sqlite:${join(dir, "spread.db")}` });
    await cluster.start();
    const clients: LifelineClient[] = [];
    try {
      // Every client is given only n1: they all land there, and learn n2 and n3 from TOPOLOGY.
      const n1 = cluster.node("n1").address;
      for (let i = 0; i < N; i++) clients.push(createClient({ servers: [n1], pingInterval: 0 }));
      await Promise.all(clients.map((c) => c.connect()));
      expect(clients.every((c) => c.status().node === "n1")).toBe(true);
      const sessions = clients.map((c) => c.status().sessionId);
      const before = await Promise.all(clients.map((c, i) => c.send(`before-${i}`)));
      expect(before.every((r, i) => Buffer.from(r).toString() === `before-${i}`)).toBe(true);
      await new Promise((r) => setTimeout(r, 300)); // TOPOLOGY has arrived

      // Messages in flight across the crash.
      const during = clients.map((c, i) => c.send(`during-${i}`));
      await cluster.kill("n1");
      const replies = await Promise.all(during);
      expect(replies.every((r, i) => Buffer.from(r).toString() === `during-${i}`)).toBe(true);

      const where = new Map<string, number>();
      for (const c of clients) where.set(c.status().node!, (where.get(c.status().node!) ?? 0) + 1);
      console.log(`spread after killing n1: ${JSON.stringify(Object.fromEntries(where))}`);
      expect(where.has("n1")).toBe(false);
      for (const n of where.values()) expect(n / N).toBeLessThanOrEqual(0.65);
      expect(clients.map((c) => c.status().sessionId)).toEqual(sessions); // resumed, not new
      expect(clients.every((c) => c.status().counters.lost === 0)).toBe(true);
    } finally {
      await Promise.all(clients.map((c) => c.close({ timeout: 0 })));
      await cluster.close();
    }
  }, 60_000);
});
