/**
 * SqliteStore shared by several nodes: instances (separate connections, as separate node
 * processes have) and real processes on the same file. Fencing across instances, `watch`
 * noticing another connection's commits through `PRAGMA data_version`, and concurrent
 * writers from several processes with no SQLITE_BUSY escaping and no commit lost.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite.ts";
import {
  commit,
  committed,
  held,
  publish,
  push,
  recordChanges,
  settle,
  text,
  waitFor,
} from "./contract-helpers.ts";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const writer = fileURLToPath(new URL("./store-writer.ts", import.meta.url));

/** Runs test/store/store-writer.ts; resolves with its exit code and stdout. */
function runWriter(file: string, name: string, sessions: number, commits: number) {
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", writer, `sqlite:${file}`, name, String(sessions), String(commits)],
      {
        cwd: repoRoot,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("close", (code) => resolve({ code, out, err }));
  });
}

describe("SqliteStore shared by several nodes", () => {
  let dir: string;
  let file: string;
  const open: SqliteStore[] = [];
  const node = (): SqliteStore => {
    const s = new SqliteStore(file);
    open.push(s);
    return s;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "lifeline-store-"));
    file = join(dir, "shared.db");
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a session created on one node is claimed by the other; the first is then fenced", async () => {
    const n1 = node();
    const n2 = node();
    const e1 = await held(n1, "s1");
    await committed(n1, "s1", e1, 1, [push("s1", "from n1")]);
    const claimed = await n2.claim("s1", "n2", Date.now());
    expect(claimed).toMatchObject({ owner: "n2", lastClientSeq: 1, lastPushSeq: 1 });
    expect(claimed!.epoch).toBeGreaterThan(e1);

    expect(await commit(n1, "s1", e1, 2, [push("s1", "stale")])).toEqual({ status: "fenced" });
    expect(await n1.deliver("s1", e1, 10)).toEqual([]);
    await n1.ackPushes("s1", e1, 1);
    await n1.release("s1", e1, 0);
    expect(await n2.getSession("s1")).toMatchObject({ owner: "n2", ackedPushSeq: 0 });

    await committed(n2, "s1", claimed!.epoch, 2, [push("s1", "from n2")]);
    expect((await n1.pushes("s1", 0, 10)).map((p) => text(p.payload))).toEqual(["from n1", "from n2"]);
  });

  it("watch notices another connection's commit (data_version polling)", async () => {
    const n1 = node();
    const n2 = node();
    const e = await held(n1, "s1");
    const w = recordChanges(n2);
    await settle();
    expect(w.changes).toEqual([]);
    await committed(n1, "s1", e, 1, [publish("t", "x")]);
    // Polled every 25 ms; the wait is generous for a loaded machine.
    await waitFor(() => w.changes.some((c) => c.kind === "any"), 10_000, "n2 to notice n1's commit");
    w.stop();
  });

  it("stops polling when the last watcher leaves and when the store closes", async () => {
    const n1 = node();
    const n2 = node();
    const internals = n2 as unknown as { poller: NodeJS.Timeout | undefined };
    const stopA = n2.watch(() => {});
    const stopB = n2.watch(() => {});
    expect(internals.poller).toBeDefined();
    stopA();
    expect(internals.poller).toBeDefined();
    stopB();
    expect(internals.poller).toBeUndefined();
    const w = recordChanges(n2);
    await n2.close();
    expect(internals.poller).toBeUndefined();
    const e = await held(n1, "s1");
    await committed(n1, "s1", e, 1);
    await settle(150);
    expect(w.changes).toEqual([]);
  });

  it("waiting for another process's write lock does not block the event loop, and keeps call order", async () => {
    const n1 = node();
    const e = await held(n1, "s1");
    const other = new Database(file);
    try {
      other.exec("BEGIN IMMEDIATE"); // another node holds the write lock
      let settled = 0;
      const first = commit(n1, "s1", e, 1, [push("s1", "a")]).finally(() => settled++);
      const second = commit(n1, "s1", e, 2, [push("s1", "b")]).finally(() => settled++);
      const read = n1.getSession("s1");
      await settle(100); // this timer fires: the event loop is not stuck in a lock wait
      expect(settled).toBe(0);
      other.exec("COMMIT");
      expect((await first).status).toBe("committed");
      expect((await second).status).toBe("committed"); // not a gap: seq 1 went first
      expect((await read)?.lastClientSeq).toBe(2); // called after both commits, so it sees them
      expect((await n1.pushes("s1", 0, 10)).map((p) => text(p.payload))).toEqual(["a", "b"]);
    } finally {
      other.close();
    }
  });

  it("gives up with LL_STORE_BUSY after busyTimeoutMs, and stays healthy", async () => {
    const n1 = new SqliteStore(file, { busyTimeoutMs: 200 });
    open.push(n1);
    const e = await held(n1, "s1");
    const other = new Database(file);
    try {
      other.exec("BEGIN IMMEDIATE");
      await expect(commit(n1, "s1", e, 1)).rejects.toMatchObject({ code: "LL_STORE_BUSY" });
      expect(n1.healthy()).toBe(true);
      other.exec("ROLLBACK");
      expect((await commit(n1, "s1", e, 1)).status).toBe("committed");
    } finally {
      other.close();
    }
  });

  it("interleaved commits from two instances to different sessions all land", async () => {
    const n1 = node();
    const n2 = node();
    const e1 = await held(n1, "a");
    const e2 = await held(n2, "b");
    const jobs: Promise<unknown>[] = [];
    for (let seq = 1; seq <= 100; seq++) {
      jobs.push(committed(n1, "a", e1, seq, [publish("t", `a${seq}`)]));
      jobs.push(committed(n2, "b", e2, seq, [publish("t", `b${seq}`)]));
    }
    await Promise.all(jobs);
    expect(await n1.topicHead("t")).toBe(200);
    expect((await n2.getSession("a"))?.lastClientSeq).toBe(100);
    expect((await n1.getSession("b"))?.lastClientSeq).toBe(100);
  });

  it("concurrent commits from three processes all land, no SQLITE_BUSY escapes", async () => {
    const names = ["p1", "p2", "p3"];
    const sessions = 2;
    const commits = 150;
    // All three open the new file at once, so they also race to create the schema.
    const results = await Promise.all(names.map((n) => runWriter(file, n, sessions, commits)));
    for (const r of results) {
      expect(r.err).not.toMatch(/SQLITE_BUSY/);
      expect(r.code, r.out + r.err).toBe(0);
      expect(JSON.parse(r.out.trim())).toEqual({ done: true, commits: sessions * commits });
    }
    const store = node();
    const total = names.length * sessions * commits;
    expect(await store.topicHead("shared")).toBe(total);
    const entries = await store.readTopic("shared", 0, total + 10);
    expect(entries.map((e) => e.offset)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const payloads = new Set(entries.map((e) => text(e.payload)));
    expect(payloads.size).toBe(total);
    for (const n of names) {
      for (let i = 0; i < sessions; i++) {
        const id = `${n}-${i}`;
        expect(await store.getSession(id)).toMatchObject({ lastClientSeq: commits, lastPushSeq: commits });
        expect(payloads.has(`${id}-${commits}`)).toBe(true);
        expect((await store.pushes(id, 0, commits + 1)).map((p) => p.seq)).toEqual(
          Array.from({ length: commits }, (_, k) => k + 1),
        );
      }
    }
  }, 60_000);
});
