import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createClient, type LifelineClient } from "../../src/client/client.ts";
import { type ChildHandle, startProcess } from "../fault/process.ts";

/**
 * The real test: five `lifeline node --join` processes on loopback (default `lan`
 * gossip preset), sharing one SQLite store so sessions can move. SIGKILL one: every survivor
 * marks it dead and the clients that were on it resume elsewhere. SIGSTOP another for less
 * than its suspicion timeout, then SIGCONT: it refutes the suspicion and no survivor ever
 * declares it dead.
 */
const root = fileURLToPath(new URL("../../", import.meta.url));

interface Running {
  id: string;
  handle: ChildHandle;
  address: string;
  gossip: string;
  admin: string;
}

interface MembersView {
  members: Array<{ id: string; state: string; incarnation: number }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("five gossiping node processes", () => {
  let dir: string;
  const nodes: Running[] = [];
  const clients: LifelineClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close({ timeout: 0 });
    await Promise.all(nodes.splice(0).map((n) => n.handle.stop(1000)));
    rmSync(dir, { recursive: true, force: true });
  });

  async function startNode(id: string, seeds: string[]): Promise<Running> {
    const args = ["bin/lifeline.js", "node", "--id", id, "--port", "0", "--gossip", "127.0.0.1:0"];
    if (seeds.length > 0) args.push("--join", seeds.join(","));
    args.push(
      "--store",
      `sqlite:${join(dir, "cluster.db")}`,
      "--admin",
      "127.0.0.1:0",
      "--log-level",
      "warn",
    );
    const handle = startProcess(process.execPath, args, { name: `node ${id}`, cwd: root });
    const l = await handle.waitForJson<{ address: string; gossip: string; admin: string }>(
      (o) => o.type === "listening",
      { timeout: 30_000, what: `node ${id} listening` },
    );
    const n = { id, handle, address: l.address, gossip: l.gossip, admin: l.admin };
    nodes.push(n);
    return n;
  }

  async function view(n: Running): Promise<Map<string, string>> {
    const r = (await (await fetch(`${n.admin}/api/members`)).json()) as MembersView;
    return new Map(r.members.map((m) => [m.id, m.state]));
  }

  async function until(cond: () => Promise<boolean>, ms: number, what: string): Promise<number> {
    const start = Date.now();
    while (!(await cond())) {
      if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
      await sleep(100);
    }
    return Date.now() - start;
  }

  it("a killed member is declared dead by every survivor and its clients move; a briefly frozen one refutes", async () => {
    dir = mkdtempSync(join(tmpdir(), "lifeline-gossip-"));
    const first = await startNode("g1", []);
    for (const id of ["g2", "g3", "g4", "g5"]) await startNode(id, [first.gossip]);
    const ids = nodes.map((n) => n.id);
    await until(
      async () => {
        for (const n of nodes) {
          const v = await view(n);
          if (!ids.every((id) => v.get(id) === "alive")) return false;
        }
        return true;
      },
      30_000,
      "all five see each other alive",
    );

    // Clients on g5 (the one to be killed), each told only of g5: TOPOLOGY gives the rest.
    const victim = nodes.find((n) => n.id === "g5")!;
    for (let i = 0; i < 3; i++) {
      const c = createClient({ servers: [victim.address], name: `c${i}` });
      clients.push(c);
      await c.connect();
      expect(await c.send(`before ${i}`)).toBeDefined();
    }
    // (Every node already sees all five alive, so the TOPOLOGY each client got lists them.)

    // Freeze g4 for 1 s (the lan suspicion timeout is ≥ 2 s): suspected, refuted, never dead.
    const frozen = nodes.find((n) => n.id === "g4")!;
    const observers = nodes.filter((n) => n !== frozen && n !== victim);
    const seen = new Set<string>();
    const watch = async (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        for (const n of observers) seen.add((await view(n)).get("g4") ?? "unknown");
        await sleep(100);
      }
    };
    frozen.handle.pause();
    await sleep(1000);
    frozen.handle.resume();
    await watch(6000);
    expect(seen.has("dead")).toBe(false);
    for (const n of observers) expect((await view(n)).get("g4")).toBe("alive");

    // SIGKILL g5: every survivor declares it dead; its clients resume on other nodes.
    victim.handle.kill();
    const took = await until(
      async () => {
        for (const n of nodes.filter((x) => x !== victim))
          if ((await view(n)).get("g5") !== "dead") return false;
        return true;
      },
      30_000,
      "every survivor marks g5 dead",
    );
    console.log(`gossip: every survivor declared the SIGKILLed member dead within ${took} ms (poll 100 ms)`);
    for (const [i, c] of clients.entries()) {
      const reply = await c.send(`after ${i}`);
      expect(Buffer.from(reply).toString()).toBe(`after ${i}`);
      expect(c.status().node).not.toBe("g5");
    }
  }, 120_000);
});
