import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Message } from "../../src/protocol/messages.ts";
import { openStore } from "../../src/store/index.ts";
import type { Store } from "../../src/store/types.ts";
import { type ChildHandle, startProcess } from "../fault/process.ts";
import { TestClient, until } from "../support/node-client.ts";

/**
 * The "done means": two `lifeline node` processes share one SQLite file; a session
 * opened on node 1 resumes on node 2 after node 1 is SIGKILLed; what node 1 had processed
 * is not run again, what it had not is processed once, and the pushes the client had not
 * acknowledged come from node 2, in order, once.
 *
 * The app (test/support/apps/counting.ts) logs every handler run to a file (outside the
 * store: it sees runs that never committed too), publishes "ran:<id>" to the topic `runs`
 * with each commit, and replies with the node and that process's run counter.
 */
const root = fileURLToPath(new URL("../../", import.meta.url));
const countingApp = fileURLToPath(new URL("../support/apps/counting.ts", import.meta.url));

let dir: string;
const children: ChildHandle[] = [];
const clients: TestClient[] = [];
const stores: Store[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lifeline-failover-"));
});

afterEach(async () => {
  for (const c of clients.splice(0)) if (c.conn?.isOpen) c.conn.destroy();
  for (const s of stores.splice(0)) await s.close();
  for (const h of children.splice(0)) {
    h.kill(); // SIGKILL to the child's own process group (its pid)
    await h.exited;
    await h.stop(); // forgets it (and SIGKILLs anything it left in its group)
  }
  rmSync(dir, { recursive: true, force: true });
});

async function startNode(
  id: string,
  db: string,
  log: string,
): Promise<{ handle: ChildHandle; address: string }> {
  const handle = startProcess(
    process.execPath,
    [
      "bin/lifeline.js",
      "node",
      "--id",
      id,
      "--port",
      "0",
      "--store",
      `sqlite:${db}`,
      "--app",
      countingApp,
      "--log-level",
      "warn",
    ],
    { name: `node ${id}`, cwd: root, env: { ...process.env, COUNTING_LOG: log } },
  );
  children.push(handle);
  const listening = await handle.waitForJson<{ address: string }>((o) => o.type === "listening", {
    timeout: 30_000,
    what: `node ${id} listening`,
  });
  return { handle, address: listening.address };
}

interface CountingReply {
  node: string;
  run: number;
  id: string;
}

const parse = (b: Buffer | Uint8Array | undefined): CountingReply =>
  JSON.parse(Buffer.from(b ?? new Uint8Array(0)).toString("utf8")) as CountingReply;

/** Every reply in the ACKs among `messages`, by client sequence (a list: duplicates show). */
function repliesIn(messages: Message[]): Map<number, CountingReply[]> {
  const out = new Map<number, CountingReply[]>();
  for (const m of messages) {
    if (m.type !== "ack") continue;
    for (const r of m.replies) out.set(r.seq, [...(out.get(r.seq) ?? []), parse(r.payload)]);
  }
  return out;
}

/** Handler runs logged by the app: id → the nodes that ran it, in order. */
function runLog(file: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    const { node, id } = JSON.parse(line) as { node: string; id: string };
    out.set(id, [...(out.get(id) ?? []), node]);
  }
  return out;
}

/** Polls an asynchronous condition every 20 ms; throws after `ms`. */
async function poll(cond: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("Two nodes sharing one SQLite file", () => {
  it("a session resumes on node 2 after node 1 is SIGKILLed: processed once, pushes in order", async () => {
    const db = join(dir, "shared.db");
    const log = join(dir, "runs.log");
    const n1 = await startNode("n1", db, log);
    const n2 = await startNode("n2", db, log);
    const store = await openStore(`sqlite:${db}`);
    stores.push(store);

    const c = await TestClient.connect(n1.address);
    clients.push(c);
    expect(c.conn.welcome).toMatchObject({ nodeId: "n1", resumed: false, lastClientSeq: 0 });
    const sessionId = c.session.id;
    c.autoAckPushes = false;
    const sent = new Map<number, string>();
    const send = (body: Record<string, unknown>) => {
      const seq = c.nextSeq;
      const payload = JSON.stringify(body);
      sent.set(seq, payload);
      return { seq, reply: c.send(payload) };
    };

    // 1. N messages, each acknowledged; the last one pushes 5 messages to the session.
    const N = 10;
    for (let i = 1; i <= N; i++) {
      const { seq, reply } = send(i === N ? { id: `a${i}`, push: 5 } : { id: `a${i}` });
      expect(seq).toBe(i);
      expect(parse(await reply)).toEqual({ node: "n1", run: i, id: `a${i}` });
    }
    const firstReplies = repliesIn(c.messages);

    // 2. The client gets the 5 pushes and acknowledges only the first 2.
    await until(() => c.pushes.length === 5, 10_000, "5 pushes from node 1");
    expect(c.pushes.map((p) => [p.seq, p.payload.toString()])).toEqual(
      [1, 2, 3, 4, 5].map((i) => [i, `a${N}/${i}`]),
    );
    c.ackPushes(2);
    await poll(
      async () => (await store.getSession(sessionId))?.ackedPushSeq === 2,
      "node 1 stores the push acknowledgement",
    );

    // 3. Four more messages without waiting for their acknowledgements. f1 and f2 commit on
    //    node 1; h1 hangs there (never committed, f3 stays queued behind it) until the kill.
    const inflight = [
      send({ id: "f1", push: 1 }),
      send({ id: "f2", push: 1 }),
      send({ id: "h1", push: 1, holdOn: "n1" }),
      send({ id: "f3", push: 1 }),
    ];
    const [f1, f2, h1, f3] = inflight.map((f) => f.seq) as [number, number, number, number];
    await poll(
      async () =>
        (await store.getSession(sessionId))?.lastClientSeq === f2 &&
        runLog(log).get("h1")?.includes("n1") === true,
      "node 1 commits f2 and starts h1",
    );

    // 4. SIGKILL node 1.
    n1.handle.kill();
    expect(await n1.handle.exited).toMatchObject({ signal: "SIGKILL" });
    await until(() => c.closed, 10_000, "the client notices node 1 is gone");
    const runsBefore = runLog(log);

    // 5. Resume on node 2, saying the client has pushes up to 2 (the ones it acknowledged).
    c.pushes.length = 0;
    c.lastPushSeq = 2;
    c.autoAckPushes = true;
    const mark = c.messages.length;
    await c.resume(n2.address);
    expect(c.conn.welcome).toMatchObject({ nodeId: "n2", sessionId, resumed: true, lastClientSeq: f2 });

    // 6. Resend everything sent without waiting (f1 and f2 too: node 1 committed them, and a
    //    client that lost their ACKs in the crash would resend them), with the original seqs.
    for (const seq of [f1, f2, h1, f3]) void c.sendAs(seq, sent.get(seq)!);
    await until(
      () => [f1, f2, h1, f3].every((s) => repliesIn(c.messages.slice(mark)).has(s)),
      20_000,
      "replies to the resent messages",
    );
    let after = repliesIn(c.messages.slice(mark));
    // Committed on node 1: node 1's reply, from the store; not run again.
    expect(after.get(f1)).toEqual([{ node: "n1", run: N + 1, id: "f1" }]);
    expect(after.get(f2)).toEqual([{ node: "n1", run: N + 2, id: "f2" }]);
    // Not committed on node 1: run once, on node 2 (its first and second runs).
    expect(after.get(h1)).toEqual([{ node: "n2", run: 1, id: "h1" }]);
    expect(after.get(f3)).toEqual([{ node: "n2", run: 2, id: "f3" }]);

    // 7. A message acknowledged long ago, resent: the stored reply, not a new run.
    void c.sendAs(1, sent.get(1)!);
    await until(() => repliesIn(c.messages.slice(mark)).has(1), 10_000, "reply to the resent message 1");
    after = repliesIn(c.messages.slice(mark));
    expect(after.get(1)).toEqual(firstReplies.get(1));
    expect(after.get(1)).toEqual([{ node: "n1", run: 1, id: "a1" }]);

    // 8. The session goes on on node 2.
    expect(parse(await send({ id: "z1", push: 1 }).reply)).toEqual({ node: "n2", run: 3, id: "z1" });

    // Pushes: 3-5 (not acknowledged before the crash), then one per message f1, f2, h1, f3,
    // z1, in order, each once.
    const expected = [`a${N}/3`, `a${N}/4`, `a${N}/5`, "f1/1", "f2/1", "h1/1", "f3/1", "z1/1"];
    await until(() => c.pushes.length >= expected.length, 20_000, "pushes from node 2");
    // One more round trip, so that a duplicate sent after the last push would be seen.
    expect(parse(await send({ id: "z2" }).reply)).toEqual({ node: "n2", run: 4, id: "z2" });
    const pushFrames = c.messages.slice(mark).filter((m) => m.type === "push");
    expect(
      pushFrames.map((m) => [
        m.type === "push" && m.seq,
        m.type === "push" && Buffer.from(m.payload).toString(),
      ]),
    ).toEqual(expected.map((p, i) => [i + 3, p]));

    // The store's record of committed runs: each message exactly once, in sequence order.
    const runs = await store.readTopic("runs", 0, 1000);
    expect(runs.map((e) => Buffer.from(e.payload).toString())).toEqual(
      [...Array.from({ length: N }, (_, i) => `a${i + 1}`), "f1", "f2", "h1", "f3", "z1", "z2"].map(
        (id) => `ran:${id}`,
      ),
    );
    // Every handler run: what node 1 committed never ran on node 2; h1 ran on node 1 (and
    // hung there, uncommitted) and once on node 2; f3 never started on node 1.
    const ran = runLog(log);
    for (let i = 1; i <= N; i++) expect(ran.get(`a${i}`)).toEqual(["n1"]);
    expect(ran.get("f1")).toEqual(["n1"]);
    expect(ran.get("f2")).toEqual(["n1"]);
    expect(runsBefore.get("f3")).toBeUndefined();
    expect(ran.get("h1")).toEqual(["n1", "n2"]);
    expect(ran.get("f3")).toEqual(["n2"]);
    expect(ran.get("z1")).toEqual(["n2"]);

    await until(() => c.lastPushSeq === 10, 10_000, "all pushes received");
    const record = await store.getSession(sessionId);
    expect(record).toMatchObject({ lastClientSeq: f3 + 2, owner: "n2", lastPushSeq: 10 });
  });
});
