import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { LocalCluster } from "../../src/cli/local-cluster.ts";
import { createClient } from "../../src/client/client.ts";
import type { Incoming } from "../../src/client/inbox.ts";
import { seededRandom } from "../../src/util/clock.ts";
import { wireTap } from "../support/wire-tap.ts";

/**
 * The failover client's end-to-end guarantee under chaos: three `lifeline node` processes on
 * one SQLite file, one client sending 10,000 messages (ids m0..m9999, in sequence), each
 * asking for one push back (10,000 pushes the other way), while a chaos loop SIGKILLs (then
 * restarts on the same port), SIGSTOPs (SIGCONT 1-3 s later) and gracefully restarts random
 * nodes — up to two of the three at once, never all; most often the one the client is on.
 *
 * Checked from the messages themselves, not from the client's counters:
 * - replies: every message got exactly one reply at the application, and it is its own (ids
 *   match); on the wire every MSG carried the payload of its sequence number, no connection
 *   answered a sequence more often than it was sent there, and every answer to a sequence
 *   (first one, or the stored one after a resend elsewhere) is byte-for-byte the same;
 * - every reply {node, run} is a real handler run of that very message: the app's run log
 *   ($COUNTING_LOG, one line per run, in run order per process) has that id at that position;
 * - committed exactly once, in order: the SQLite file, opened read-only after the nodes
 *   stopped, holds the topic `runs` (one "ran:<id>" per commit, written in the commit's
 *   transaction) as exactly ran:m0..ran:m9999, and one session, at sequence 10,000;
 * - every push "<id>/1" reached the application (its `messages()` iterator) exactly once,
 *   in message order, with push sequence numbers 1..10,000.
 * Handler runs that never committed (on a node killed or frozen mid-message) are allowed and
 * reported. Set CHAOS_SEED to replay a fault sequence (timing still varies).
 */
const countingApp = fileURLToPath(new URL("../support/apps/counting.ts", import.meta.url));
const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
const dir = mkdtempSync(join(base, "lifeline-chaos-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOTAL = 10_000;
const RATE = 400; // messages per second: ~25 s of traffic, so the chaos has time to bite
const MAX_IMPAIRED = 2; // of three nodes: never all at once
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with `p`, or rejects after `ms` with `what()` (the state, for the report). */
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

interface CountingReply {
  node: string;
  run: number;
  id: string;
}

interface Fault {
  at: number;
  action: "kill" | "freeze" | "restart";
  node: string;
  /** The client was connected to it when it was hit. */
  onClient: boolean;
}

const first = <T>(list: T[], n = 10) => list.slice(0, n);

describe("chaos", () => {
  it("10,000 messages each way through random SIGKILL / SIGSTOP / restart: exactly once, in order", async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);
    const random = seededRandom(seed);
    const log = join(dir, "runs.log");
    const db = join(dir, "chaos.db");
    const cluster = new LocalCluster({
      store: `sqlite:${db}`,
      app: countingApp,
      drainDeadline: 1000,
      env: { ...process.env, COUNTING_LOG: log },
    });
    const tap = wireTap();
    await cluster.start();
    const c = createClient({
      servers: cluster.addresses,
      heartbeat: 200,
      deadAfter: 1000,
      connect: tap.connect,
    });

    const connected: Array<{ node: string; resumed: boolean; at: number }> = [];
    const sessionLost: string[] = [];
    const dropped: string[] = [];
    const recoveredReplies: number[] = [];
    const eventPushes: Incoming[] = [];
    const t0 = Date.now();
    c.on("connected", (e) => connected.push({ node: e.node, resumed: e.resumed, at: Date.now() - t0 }));
    c.on("session-lost", (e) => sessionLost.push(`${e.sessionId}: ${e.reason} (${e.unacknowledged.length})`));
    c.on("dropped", (e) => dropped.push(Buffer.from(e.payload).toString("utf8")));
    c.on("reply", (e) => recoveredReplies.push(e.seq));
    c.on("message", (m) => eventPushes.push(m));

    // Chaos: a new fault every 0.7-2 s while fewer than MAX_IMPAIRED nodes are impaired; the
    // victim is the client's node 60% of the time (else any unimpaired node).
    const faults: Fault[] = [];
    const chaosErrors: string[] = [];
    const impaired = new Set<string>();
    const tasks = new Set<Promise<void>>();
    let chaosOn = true;
    const injure = async (id: string, action: Fault["action"]): Promise<void> => {
      if (action === "kill") {
        await cluster.kill(id);
        await sleep(300 + random() * 1200);
        await cluster.restart(id); // same port
      } else if (action === "freeze") {
        cluster.freeze(id);
        await sleep(1000 + random() * 2000);
        cluster.thaw(id);
      } else {
        await cluster.restart(id); // graceful: GOAWAY, drain, exit, start again on its port
      }
    };
    const chaos = (async () => {
      while (chaosOn) {
        await sleep(700 + random() * 1300);
        if (!chaosOn) break;
        if (impaired.size >= MAX_IMPAIRED) continue;
        const healthy = cluster.nodes.filter((n) => n.state === "running" && !impaired.has(n.id));
        if (healthy.length < 2) continue; // the victim comes from these: one always stays up
        const current = c.status().node;
        const clientsNode = healthy.find((n) => n.id === current);
        const victim =
          clientsNode && random() < 0.6 ? clientsNode : healthy[Math.floor(random() * healthy.length)]!;
        const action = (["kill", "freeze", "restart"] as const)[Math.floor(random() * 3)]!;
        faults.push({ at: Date.now() - t0, action, node: victim.id, onClient: victim.id === current });
        impaired.add(victim.id);
        const task: Promise<void> = injure(victim.id, action)
          .catch((err: unknown) => {
            chaosErrors.push(`${action} ${victim.id}: ${String(err)}`);
          })
          .finally(() => {
            impaired.delete(victim.id);
            tasks.delete(task);
          });
        tasks.add(task);
      }
      while (tasks.size > 0) await Promise.all([...tasks]);
    })();

    // The application: replies as each send() resolves, pushes from the messages() iterator.
    const replies = new Map<string, string[]>();
    const failures: string[] = [];
    const appPushes: Incoming[] = [];
    const consumer = (async () => {
      for await (const m of c.messages()) appPushes.push(m);
    })();
    try {
      await c.connect({ timeout: 10_000 });
      const started = Date.now();
      const pending: Array<Promise<void>> = [];
      for (let i = 0; i < TOTAL; i++) {
        const id = `m${i}`;
        pending.push(
          c.send(JSON.stringify({ id, n: i, push: 1 })).then(
            (reply) => {
              const text = Buffer.from(reply).toString("utf8");
              replies.set(id, [...(replies.get(id) ?? []), text]);
            },
            (err: unknown) => {
              failures.push(`${id}: ${(err as { code?: string }).code ?? ""} ${String(err)}`);
            },
          ),
        );
        const due = started + (i * 1000) / RATE;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      const status = () =>
        `${replies.size} replies, ${failures.length} failures; ${JSON.stringify(c.status())}`;
      await within(Promise.all(pending), 20_000, status);
      chaosOn = false;
      await within(chaos, 15_000, () => `chaos still running: ${[...impaired].join(",")}`);
      for (const end = Date.now() + 15_000; appPushes.length < TOTAL; await sleep(20)) {
        if (Date.now() > end)
          throw new Error(`only ${appPushes.length} pushes within 15 s; ${JSON.stringify(c.status())}`);
      }
      await sleep(300); // room for a duplicate push to show up, if one were coming
      await c.close();
      await consumer;
    } finally {
      chaosOn = false;
      await chaos;
      await c.close({ timeout: 0 });
      await cluster.close();
    }
    const counters = c.status().counters;

    // 1. Replies at the application: one each, each its own.
    expect(failures).toEqual([]);
    expect(replies.size).toBe(TOTAL);
    const notOne = [...replies].filter(([, r]) => r.length !== 1).map(([id, r]) => `${id}×${r.length}`);
    expect(notOne).toEqual([]);
    const parsed = new Map<string, CountingReply>();
    const wrong: string[] = [];
    for (const [id, [text]] of replies) {
      const r = JSON.parse(text!) as CountingReply;
      parsed.set(id, r);
      if (r.id !== id) wrong.push(`${id} got ${text}`);
    }
    expect(wrong).toEqual([]);

    // 2. The wire: what each connection carried.
    const payloadOf = new Map<number, string>();
    const conflicting: string[] = [];
    const overAnswered: string[] = [];
    const wireReplies = new Map<number, string[]>();
    for (const l of tap.links) {
      for (const [seq, payloads] of l.sent) {
        for (const p of payloads) {
          const had = payloadOf.get(seq);
          if (had === undefined) payloadOf.set(seq, p);
          else if (had !== p) conflicting.push(`seq ${seq}: ${had} vs ${p} (link ${l.index})`);
        }
      }
      for (const [seq, answers] of l.replies) {
        if (answers.length > (l.sent.get(seq)?.length ?? 0))
          overAnswered.push(`link ${l.index} (${l.node}) seq ${seq}: ${answers.length} replies`);
        wireReplies.set(seq, [...(wireReplies.get(seq) ?? []), ...answers]);
      }
    }
    expect(conflicting).toEqual([]);
    expect(overAnswered).toEqual([]);
    // Sequence numbers 1..TOTAL carry m0..m9999, in order.
    expect(payloadOf.size).toBe(TOTAL);
    const misnumbered: string[] = [];
    for (let s = 1; s <= TOTAL; s++) {
      const p = payloadOf.get(s);
      if (p === undefined || (JSON.parse(p) as { id: string }).id !== `m${s - 1}`)
        misnumbered.push(`${s}: ${p}`);
    }
    expect(first(misnumbered)).toEqual([]);
    // Every sequence answered, every answer the same, and the same as the application's.
    const unanswered: number[] = [];
    const differing: string[] = [];
    for (let s = 1; s <= TOTAL; s++) {
      const answers = wireReplies.get(s) ?? [];
      if (answers.length === 0) unanswered.push(s);
      const app = replies.get(`m${s - 1}`)?.[0];
      if (answers.some((a) => a !== app)) differing.push(`seq ${s}: app ${app}, wire ${answers.join(" | ")}`);
    }
    expect(first(unanswered)).toEqual([]);
    expect(first(differing)).toEqual([]);
    // Answers that came from the store, not a run: a node answering for a run of another node
    // (committed there, its ACK lost in a fault, the message resent here).
    let stored = 0;
    for (const l of tap.links)
      for (const answers of l.replies.values())
        for (const a of answers) if ((JSON.parse(a) as CountingReply).node !== l.node) stored++;

    // 3. Every reply is a real run of its own message: the run log, per process, in run order.
    const runsOf = new Map<string, string[]>(); // "node pid" → ids, in run order
    const runsById = new Map<string, string[]>(); // id → "node pid" of each run
    const lines = readFileSync(log, "utf8").split("\n").filter(Boolean);
    for (const line of lines) {
      const { node, pid, id } = JSON.parse(line) as { node: string; pid: number; id: string };
      const proc = `${node} ${pid}`;
      runsOf.set(proc, [...(runsOf.get(proc) ?? []), id]);
      runsById.set(id, [...(runsById.get(id) ?? []), proc]);
    }
    const invented: string[] = [];
    for (const [id, r] of parsed) {
      const real = [...runsOf].some(([proc, ids]) => proc.startsWith(`${r.node} `) && ids[r.run - 1] === id);
      if (!real) invented.push(`${id}: ${JSON.stringify(r)}`);
    }
    expect(first(invented)).toEqual([]);
    const neverRan = [...parsed.keys()].filter((id) => !runsById.has(id));
    expect(first(neverRan)).toEqual([]);
    const reRun = [...runsById].filter(([, procs]) => procs.length > 1);

    // 4. The store, read-only, after every node stopped: committed once each, in order.
    const sqlite = new Database(db, { readonly: true, fileMustExist: true });
    let committed: string[];
    let sessions: Array<{ id: string; last_client_seq: number; last_push_seq: number; epoch: number }>;
    try {
      committed = (
        sqlite.prepare("SELECT payload FROM topic_entries WHERE topic = 'runs' ORDER BY off").all() as Array<{
          payload: Buffer;
        }>
      ).map((r) => Buffer.from(r.payload).toString("utf8"));
      sessions = sqlite
        .prepare("SELECT id, last_client_seq, last_push_seq, epoch FROM sessions")
        .all() as typeof sessions;
    } finally {
      sqlite.close();
    }
    const expectedRuns = Array.from({ length: TOTAL }, (_, i) => `ran:m${i}`);
    const committedCount = new Map<string, number>();
    for (const e of committed) committedCount.set(e, (committedCount.get(e) ?? 0) + 1);
    expect(first([...committedCount].filter(([, n]) => n !== 1))).toEqual([]);
    expect(committed.length).toBe(TOTAL);
    expect(committed).toEqual(expectedRuns); // each once, in message order
    expect(sessions.map((s) => [s.id, s.last_client_seq, s.last_push_seq])).toEqual([
      [c.status().sessionId, TOTAL, TOTAL],
    ]);

    // 5. Pushes at the application: each once, in message order, push seqs 1..TOTAL.
    const expectedPushes = Array.from({ length: TOTAL }, (_, i) => `m${i}/1`);
    expect(appPushes.map((m) => Buffer.from(m.payload).toString("utf8"))).toEqual(expectedPushes);
    expect(appPushes.map((m) => m.seq)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    expect(eventPushes.map((m) => Buffer.from(m.payload).toString("utf8"))).toEqual(expectedPushes);

    // 6. One session throughout: every reconnect resumed it; nothing lost or dropped.
    expect(sessionLost).toEqual([]);
    expect(dropped).toEqual([]);
    expect(recoveredReplies).toEqual([]);
    expect(connected[0]?.resumed).toBe(false);
    expect(connected.slice(1).filter((e) => !e.resumed)).toEqual([]);

    // 7. The chaos did bite: faults on the client's node, and the client moved.
    expect(chaosErrors).toEqual([]);
    expect(faults.length).toBeGreaterThanOrEqual(4);
    expect(faults.filter((f) => f.onClient).length).toBeGreaterThanOrEqual(2);
    expect(connected.length).toBeGreaterThanOrEqual(3);

    const fmt = (f: Fault) => `${(f.at / 1000).toFixed(1)}s ${f.action} ${f.node}${f.onClient ? "*" : ""}`;
    console.log(
      [
        `chaos (seed ${seed}): ${faults.length} faults, * = the client's node: ${faults.map(fmt).join(", ")}`,
        `client connections: ${connected.map((e) => `${(e.at / 1000).toFixed(1)}s ${e.node}${e.resumed ? " (resumed)" : ""}`).join(", ")}`,
        `handler runs: ${lines.length} for ${TOTAL} messages: ${lines.length - TOTAL} did not commit ` +
          `(${reRun.length} messages ran more than once${
            reRun.length
              ? `, e.g. ${first(reRun, 5)
                  .map(([id, p]) => `${id} on ${p.join(" / ")}`)
                  .join("; ")}`
              : ""
          })`,
        `wire: ${tap.links.length} connections; ${counters.resent} resends, ${stored} of them answered from a stored reply (committed on another node, ACK lost in a fault)`,
        `client counters: ${JSON.stringify(counters)}`,
      ].join("\n"),
    );
  }, 60_000);
});
