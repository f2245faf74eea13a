import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { LocalCluster } from "../../src/cli/local-cluster.ts";
import { createClient, type LifelineClient } from "../../src/client/client.ts";
import { wireTap } from "../support/wire-tap.ts";

/**
 * The herd: 500 clients in this process, all given only n1's address (so all of them land on
 * n1 and learn n2 and n3 from its TOPOLOGY), of a three-node cluster of `lifeline node`
 * processes on one SQLite file. n1 is SIGKILLed while every client has one message just
 * acknowledged, two in flight, and one more sent while n1 dies. Once they have settled (one
 * more message each, then no reconnect for a second):
 * - every client resumed its own session (same id, `connected` with resumed) on n2 or n3;
 * - neither survivor got more than 65% of them;
 * - no message was lost: every send() got its own reply, and the SQLite file (read-only,
 *   after the nodes stopped) holds each message committed exactly once, in each client's
 *   order, and each session at sequence 5.
 */
const countingApp = fileURLToPath(new URL("../support/apps/counting.ts", import.meta.url));
const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
const dir = mkdtempSync(join(base, "lifeline-spread-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const N = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with `p`, or rejects after `ms` with `what()`. */
async function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what()}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what()}`);
    await sleep(20);
  }
}

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");
const idOf = (reply: Uint8Array) => (JSON.parse(text(reply)) as { id: string }).id;
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

describe("herd", () => {
  it("500 clients on a node that is killed spread over the survivors (none over 65%), all resumed, nothing lost", async () => {
    const db = join(dir, "spread.db");
    const cluster = new LocalCluster({ store: `sqlite:${db}`, app: countingApp });
    const tap = wireTap();
    const clients: LifelineClient[] = [];
    const connected: Array<Array<{ node: string; resumed: boolean; at: number }>> = [];
    const lost: string[] = [];
    const thrownOff: string[] = []; // disconnected after the kill from a survivor, and why
    let killAt = 0;
    const spread: Record<string, number> = {};
    await cluster.start();
    try {
      const n1 = cluster.node("n1").address;
      for (let i = 0; i < N; i++) {
        const c = createClient({ servers: [n1], pingInterval: 0, connect: tap.connect, name: `c${i}` });
        connected.push([]);
        c.on("connected", (e) => connected[i]!.push({ node: e.node, resumed: e.resumed, at: Date.now() }));
        c.on("session-lost", (e) => lost.push(`c${i} ${e.sessionId}: ${e.reason}`));
        c.on("disconnected", (e) => {
          if (killAt && e.node !== "n1") thrownOff.push(`c${i} from ${e.node}: ${e.error?.code ?? "closed"}`);
        });
        clients.push(c);
      }
      await Promise.all(clients.map((c) => c.connect({ timeout: 15_000 })));
      expect(clients.filter((c) => c.status().node !== "n1").length).toBe(0);
      const sessions = clients.map((c) => c.status().sessionId!);
      expect(new Set(sessions).size).toBe(N);

      // Each client learned the whole cluster from n1's TOPOLOGY (read on the wire).
      const all = cluster.addresses;
      const informed = () =>
        tap.links.filter((l) => l.node === "n1" && l.topology.some((t) => all.every((a) => t.includes(a))))
          .length;
      await until(
        () => informed() >= N,
        10_000,
        () => `${informed()} of ${N} clients got a full TOPOLOGY`,
      );

      // One message each, acknowledged just before the crash.
      const a = await Promise.all(clients.map((c, i) => c.send(JSON.stringify({ id: `c${i}-a` }))));
      expect(a.map(idOf)).toEqual(clients.map((_, i) => `c${i}-a`));

      // Two in flight when n1 dies, and one sent while it is dying.
      const inflight = clients.map((c, i) => [
        c.send(JSON.stringify({ id: `c${i}-b` })),
        c.send(JSON.stringify({ id: `c${i}-c` })),
      ]);
      killAt = Date.now();
      const killing = cluster.kill("n1");
      const late = clients.map((c, i) => c.send(JSON.stringify({ id: `c${i}-d` })));
      await killing;
      let answered = 0;
      const replies = await within(
        Promise.all(
          clients.map(async (_, i) => {
            const r = [...(await Promise.all(inflight[i]!)), await late[i]!].map(idOf);
            answered++;
            return r;
          }),
        ),
        20_000,
        () => `only ${answered} of ${N} clients got their replies`,
      );
      expect(replies).toEqual(clients.map((_, i) => [`c${i}-b`, `c${i}-c`, `c${i}-d`]));

      // Settle: one more message each once any late claim has landed (a connection fenced by
      // one notices at its next commit), then no reconnect for a second: where they stay.
      await sleep(2000);
      const last = await Promise.all(clients.map((c, i) => c.send(JSON.stringify({ id: `c${i}-e` }))));
      expect(last.map(idOf)).toEqual(clients.map((_, i) => `c${i}-e`));
      const lastConnect = () => Math.max(...connected.map((l) => l.at(-1)?.at ?? 0));
      await until(
        () => Date.now() - lastConnect() >= 1000,
        10_000,
        () => "clients still moving",
      );

      // Where they went, and how: resumed, same session, not on n1.
      const moved = connected.map((list) => list.filter((e) => e.at >= killAt));
      const wrong = moved.flatMap((list, i) =>
        list.length === 0 || list.some((e) => !e.resumed || e.node === "n1")
          ? [`c${i}: ${JSON.stringify(list)}`]
          : [],
      );
      expect(wrong.slice(0, 10)).toEqual([]);
      expect(lost).toEqual([]);
      expect(clients.map((c) => c.status().sessionId)).toEqual(sessions);
      for (const c of clients) spread[c.status().node!] = (spread[c.status().node!] ?? 0) + 1;
      expect(Object.keys(spread).sort()).not.toContain("n1");
      expect(Object.values(spread).reduce((x, y) => x + y, 0)).toBe(N);
      for (const n of Object.values(spread)) expect(n / N).toBeLessThanOrEqual(0.65);
      expect(clients.filter((c, i) => c.status().node !== moved[i]!.at(-1)?.node).length).toBe(0);

      const took = moved.map((list) => list[0]!.at - killAt).sort((x, y) => x - y);
      const landed: Record<string, number> = {};
      for (const list of moved) landed[list[0]!.node] = (landed[list[0]!.node] ?? 0) + 1;
      const why: Record<string, number> = {};
      for (const t of thrownOff) why[t.split(": ")[1]!] = (why[t.split(": ")[1]!] ?? 0) + 1;
      const thrownClients = new Set(thrownOff.map((t) => t.split(" ")[0])).size;
      // Clients thrown off a survivor they had just resumed on are the raced-resume bug (see
      // race-claim.test.ts): they resume again, on the other one, still within the checks above.
      console.log(
        `spread after SIGKILL of n1: ${JSON.stringify(spread)} (first landing ${JSON.stringify(landed)}); ` +
          `first resume after ${pct(took, 0.5)} ms p50, ${pct(took, 0.9)} ms p90, ${took.at(-1)} ms max; ` +
          `${thrownClients} clients thrown off a survivor again (${thrownOff.length} times: ${JSON.stringify(why)})`,
      );
    } finally {
      await Promise.all(clients.map((c) => c.close({ timeout: 0 })));
      await cluster.close();
    }

    // The store, read-only, after the nodes stopped: each message committed once, in order.
    const sqlite = new Database(db, { readonly: true, fileMustExist: true });
    try {
      const runs = (
        sqlite.prepare("SELECT payload FROM topic_entries WHERE topic = 'runs' ORDER BY off").all() as Array<{
          payload: Buffer;
        }>
      ).map((r) => text(r.payload).replace(/^ran:/, ""));
      const byClient = new Map<string, string[]>();
      for (const id of runs) {
        const [c] = id.split("-");
        byClient.set(c!, [...(byClient.get(c!) ?? []), id]);
      }
      expect(runs.length).toBe(5 * N);
      const bad = [...byClient].filter(
        ([c, ids]) => ids.join() !== ["a", "b", "c", "d", "e"].map((s) => `${c}-${s}`).join(),
      );
      expect(bad.slice(0, 10)).toEqual([]);
      expect(byClient.size).toBe(N);
      const rows = sqlite.prepare("SELECT id, last_client_seq FROM sessions").all() as Array<{
        id: string;
        last_client_seq: number;
      }>;
      expect(rows.length).toBe(N);
      expect(new Set(rows.map((r) => r.id))).toEqual(new Set(clients.map((c) => c.status().sessionId)));
      expect(rows.filter((r) => r.last_client_seq !== 5)).toEqual([]);
    } finally {
      sqlite.close();
    }
  }, 45_000);
});
