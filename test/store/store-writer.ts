/**
 * A child process for the multi-process store tests (test/store/sqlite-shared.test.ts,
 * test/store/redis.test.ts): one "node" committing to a store that other processes write at
 * the same time.
 *
 *   node --import tsx test/store/store-writer.ts STORE_URL NAME SESSIONS COMMITS
 *
 * Opens the store (`sqlite:FILE`, possibly creating the file while others do, or `redis://…`),
 * creates and claims SESSIONS sessions `NAME-i`, then commits COMMITS messages to each,
 * round-robin, the sessions' commits of one round in flight together, every one with a push to
 * its own session and a publish of `NAME-i-seq` to the shared topic `shared`. Prints one JSON
 * line `{ "done": true, "commits": N }` and exits 0; any error is printed as
 * `{ "error": "..." }` with exit status 1.
 */
import { openStore } from "../../src/store/index.ts";

const [url, name, sessionsArg, commitsArg] = process.argv.slice(2);
if (!url || !name) {
  process.stderr.write("usage: store-writer STORE_URL NAME SESSIONS COMMITS\n");
  process.exit(2);
}
const sessions = Number(sessionsArg ?? 2);
const commits = Number(commitsArg ?? 50);
const enc = new TextEncoder();

async function main(): Promise<number> {
  const store = await openStore(url);
  const epochs: number[] = [];
  for (let i = 0; i < sessions; i++) {
    const id = `${name}-${i}`;
    await store.createSession({
      id,
      tokenHash: "00",
      createdAt: Date.now(),
      lastClientSeq: 0,
      lastPushSeq: 0,
      ackedPushSeq: 0,
      ttl: 60_000,
      expiresAt: null,
      owner: null,
      epoch: 0,
    });
    epochs.push((await store.claim(id, name!, Date.now()))!.epoch);
  }
  let done = 0;
  for (let seq = 1; seq <= commits; seq++) {
    // The sessions' commits of one round are in flight together (pipelined on one Redis
    // connection; queued on SQLite's one).
    const round = Array.from({ length: sessions }, async (_, i) => {
      const id = `${name}-${i}`;
      const r = await store.commit({
        session: id,
        epoch: epochs[i]!,
        seq,
        reply: enc.encode(`r${seq}`),
        effects: [
          { kind: "push", session: id, payload: enc.encode(`p${seq}`) },
          { kind: "publish", topic: "shared", payload: enc.encode(`${id}-${seq}`) },
        ],
      });
      if (r.status !== "committed") throw new Error(`${id} seq ${seq}: ${r.status}`);
      done++;
    });
    await Promise.all(round);
    // Let the other processes interleave with us rather than each running in one burst.
    if (seq % 10 === 0) await new Promise((r) => setImmediate(r));
  }
  await store.close();
  process.stdout.write(`${JSON.stringify({ done: true, commits: done })}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stdout.write(`${JSON.stringify({ error: String(err) })}\n`);
    process.exit(1);
  },
);
