import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { LocalCluster } from "../../src/cli/local-cluster.ts";
import { createClient } from "../../src/client/client.ts";
import { openStore } from "../../src/store/index.ts";
import { seededRandom } from "../../src/util/clock.ts";

/**
 * The failover client's end-to-end guarantee under chaos: three `lifeline node` processes on
 * one SQLite file, 10,000 messages from the client (each asking for one push back, so 10,000
 * pushes the other way), while nodes are SIGKILLed, SIGSTOPped and restarted at random.
 * Checked from the messages themselves, not from the client's counters:
 * - every message got exactly one reply, and it is its own (ids match);
 * - every message was committed exactly once: the app publishes "ran:<id>" to the topic
 *   `runs` in the same transaction as the reply, so the topic lists each committed run;
 * - every push "<id>/1" reached the application exactly once, in message order.
 * Handler runs that never committed (on a node killed mid-message) are allowed, and counted.
 */
const countingApp = fileURLToPath(new URL("../support/apps/counting.ts", import.meta.url));
const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
const dir = mkdtempSync(join(base, "lifeline-chaos-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOTAL = 10_000;
const RATE = 400; // messages per second: ~25 s of traffic, so the chaos has time to bite
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("chaos", () => {
  it("10,000 messages each way through random SIGKILL / SIGSTOP / restart: exactly once, in order", async () => {
    const log = join(dir, "runs.log");
    const db = join(dir, "chaos.db");
    const cluster = new LocalCluster({
      store: `sqlite:${db}`,
      app: countingApp,
      drainDeadline: 1000,
      env: { ...process.env, COUNTING_LOG: log },
    });
    await cluster.start();
    const client = createClient({ servers: cluster.addresses, heartbeat: 200, deadAfter: 1000 });
    const faults: string[] = [];
    try {
      await client.connect();
      const replies = new Map<string, number>();
      const wrong: string[] = [];
      const pushes: string[] = [];
      client.on("message", (m) => pushes.push(Buffer.from(m.payload).toString("utf8")));

      // Chaos: one impaired node at a time; a random action every 1-2.5 s.
      const random = seededRandom(Date.now() % 100_000);
      let sending = true;
      const chaos = (async () => {
        while (sending) {
          await sleep(1000 + random() * 1500);
          if (!sending) break;
          const running = cluster.nodes.filter((n) => n.state === "running");
          const victim = running[Math.floor(random() * running.length)]!;
          const action = ["kill", "freeze", "restart"][Math.floor(random() * 3)]!;
          faults.push(`${action} ${victim.id}`);
          if (action === "kill") {
            await cluster.kill(victim.id);
            await sleep(300 + random() * 1200);
            await cluster.restart(victim.id);
          } else if (action === "freeze") {
            cluster.freeze(victim.id);
            await sleep(1000 + random() * 2000);
            cluster.thaw(victim.id);
          } else {
            await cluster.restart(victim.id); // graceful: GOAWAY, drain, start again
          }
        }
      })();

      const started = Date.now();
      const pending: Array<Promise<void>> = [];
      for (let i = 0; i < TOTAL; i++) {
        const id = `m${i}`;
        pending.push(
          client.send(JSON.stringify({ id, push: 1 })).then((reply) => {
            const r = JSON.parse(Buffer.from(reply).toString("utf8")) as { id: string };
            if (r.id !== id) wrong.push(`${id} got ${r.id}`);
            replies.set(id, (replies.get(id) ?? 0) + 1);
          }),
        );
        const due = started + (i * 1000) / RATE;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      await Promise.all(pending);
      sending = false;
      await chaos;
      const deadline = Date.now() + 20_000;
      while (pushes.length < TOTAL && Date.now() < deadline) await sleep(20);
      await client.close();

      // Replies: one each, each its own.
      expect(wrong).toEqual([]);
      expect(replies.size).toBe(TOTAL);
      expect([...replies.values()].every((n) => n === 1)).toBe(true);
      // Pushes: one per message, in message order, none twice.
      expect(pushes.length).toBe(TOTAL);
      expect(pushes).toEqual(Array.from({ length: TOTAL }, (_, i) => `m${i}/1`));
      expect(faults.length).toBeGreaterThanOrEqual(5);
    } finally {
      await client.close({ timeout: 0 });
      await cluster.close();
    }

    // Committed runs, from the store itself: each message exactly once.
    const store = await openStore(`sqlite:${db}`);
    const committed = new Map<string, number>();
    try {
      for (let after = 0; ; ) {
        const page = await store.readTopic("runs", after, 1000);
        if (page.length === 0) break;
        for (const e of page) {
          const id = Buffer.from(e.payload).toString("utf8").replace(/^ran:/, "");
          committed.set(id, (committed.get(id) ?? 0) + 1);
        }
        after = page[page.length - 1]!.offset;
      }
    } finally {
      await store.close();
    }
    expect(committed.size).toBe(TOTAL);
    const twice = [...committed].filter(([, n]) => n !== 1);
    expect(twice).toEqual([]);
    const handlerRuns = readFileSync(log, "utf8").trim().split("\n").length;
    console.log(
      `chaos: ${faults.length} faults (${faults.join(", ")}); ${handlerRuns - TOTAL} handler re-runs that did not commit; client: ${JSON.stringify(client.status().counters)}`,
    );
  }, 120_000);
});
