/**
 * store: how fast can a node commit client messages to the session store?
 *
 *   npx tsx bench/store.ts [--seconds S] [--quick] [--variants LIST] [--out DIR]
 *
 * Each commit is what a node does per client message: the de-duplication record with a
 * 100-byte reply and one effect, a publish of a 100-byte entry to a shared topic. Every
 * commit's latency (the awaited `store.commit` call) is recorded.
 *
 * Variants, one after the other, S seconds each (default 5; --quick 1):
 * - `memory-1`, `sqlite-1`: one session committing sequentially;
 * - `memory-4`, `sqlite-4`: four sessions in this process, each committing sequentially,
 *   concurrently with each other (one SQLite connection, as one node has);
 * - `sqlite-4p`: four processes on the same file, one session each (four nodes on one
 *   machine sharing the store: writers take turns on the file's write lock);
 * - `redis-1`, `redis-4`: one and four sessions on a local redis-server (started per variant
 *   on a free loopback port, no persistence; skipped when redis-server is not installed).
 * The SQLite file lives in a temporary directory that is removed afterwards.
 *
 * Prints a Markdown table on stdout and writes DIR/store.json and .md, and two charts,
 * store.svg (commits/s) and store-latency.svg (DIR: bench/results).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { MemoryStore } from "../src/store/memory.ts";
import { RedisStore } from "../src/store/redis.ts";
import { parseRedisUrl } from "../src/store/redis-url.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import type { Store } from "../src/store/types.ts";
import { killAllSync, repoRoot, spawnNode, stopAll } from "./lib/children.ts";
import { Progress } from "./lib/progress.ts";
import { type RedisServer, redisServerPath, startRedis } from "./lib/redis-server.ts";
import { hostInfo, markdownTable, num, writeResults } from "./lib/report.ts";
import { barChart, writeChart } from "./lib/svg-chart.ts";

const NAME = "store";
const PAYLOAD = 100;

interface Variant {
  id: string;
  store: "memory" | "sqlite" | "redis";
  sessions: number;
  processes: number;
  title: string;
}

const VARIANTS: Variant[] = [
  { id: "memory-1", store: "memory", sessions: 1, processes: 1, title: "memory, 1 session, sequential" },
  { id: "memory-4", store: "memory", sessions: 4, processes: 1, title: "memory, 4 concurrent sessions" },
  { id: "sqlite-1", store: "sqlite", sessions: 1, processes: 1, title: "sqlite, 1 session, sequential" },
  {
    id: "sqlite-4",
    store: "sqlite",
    sessions: 4,
    processes: 1,
    title: "sqlite, 4 concurrent sessions, 1 process",
  },
  {
    id: "sqlite-4p",
    store: "sqlite",
    sessions: 4,
    processes: 4,
    title: "sqlite, 4 processes on one file, 1 session each",
  },
  { id: "redis-1", store: "redis", sessions: 1, processes: 1, title: "redis (local), 1 session, sequential" },
  { id: "redis-4", store: "redis", sessions: 4, processes: 1, title: "redis (local), 4 concurrent sessions" },
];

interface Result {
  id: string;
  title: string;
  sessions: number;
  processes: number;
  commits: number;
  seconds: number;
  perSecond: number;
  p50us: number;
  p99us: number;
  maxUs: number;
}

/** Latencies in µs, growing without reallocating per sample. */
class Samples {
  private buf = new Float64Array(1 << 16);
  n = 0;
  add(us: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = us;
  }
  values(): Float64Array {
    return this.buf.subarray(0, this.n);
  }
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))]!;
}

/** Creates and claims session `id`, then commits to it until `deadline` (performance.now() ms). */
async function commitLoop(store: Store, id: string, deadline: number, samples: Samples): Promise<void> {
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
  const epoch = (await store.claim(id, "bench", Date.now()))!.epoch;
  const reply = new Uint8Array(PAYLOAD).fill(1);
  const entry = new Uint8Array(PAYLOAD).fill(2);
  for (let seq = 1; ; seq++) {
    const t0 = performance.now();
    if (t0 >= deadline) return;
    const r = await store.commit({
      session: id,
      epoch,
      seq,
      reply,
      effects: [{ kind: "publish", topic: "bench", payload: entry }],
    });
    samples.add((performance.now() - t0) * 1000);
    if (r.status !== "committed") throw new Error(`commit ${id}/${seq}: ${r.status}`);
  }
}

/** Runs `sessions` commit loops in this process for `seconds`; returns the latencies. */
async function runLocal(
  store: Store,
  prefix: string,
  sessions: number,
  seconds: number,
): Promise<Float64Array> {
  const samples = new Samples();
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: sessions }, (_, i) => commitLoop(store, `${prefix}-${i}`, deadline, samples)),
  );
  return samples.values();
}

/** Child mode (sqlite-4p): waits for "go" on stdin, commits for S seconds, prints its latencies. */
async function child(file: string, name: string, seconds: number): Promise<void> {
  const store = new SqliteStore(file);
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((go) => lines.once("line", () => go()));
  const lat = await runLocal(store, name, 1, seconds);
  await store.close();
  process.stdout.write(`${JSON.stringify({ latencies: Array.from(lat, (v) => Math.round(v * 10) / 10) })}\n`);
  lines.close();
  process.stdin.destroy();
}

async function runProcesses(file: string, v: Variant, seconds: number): Promise<Float64Array> {
  const script = join(repoRoot, "bench", "store.ts");
  const ready: Promise<void>[] = [];
  const results: number[][] = [];
  const kids = Array.from({ length: v.processes }, (_, i) => {
    let onReady!: () => void;
    ready.push(new Promise((r) => (onReady = r)));
    return spawnNode(
      `store-${i}`,
      script,
      ["--child", file, "--name", `p${i}`, "--seconds", String(seconds)],
      {
        onLine: (msg) => {
          if (msg.ready) onReady();
          if (Array.isArray(msg.latencies)) results.push(msg.latencies as number[]);
        },
      },
    );
  });
  await Promise.race([
    Promise.all(ready),
    Promise.all(kids.map((k) => k.exited)).then(() => {
      throw new Error(`a child exited early: ${kids.map((k) => k.stderrTail.join("\n")).join("\n")}`);
    }),
  ]);
  for (const k of kids) k.child.stdin?.write("go\n");
  const codes = await Promise.all(kids.map((k) => k.exited));
  if (codes.some((c) => c !== 0) || results.length !== kids.length) {
    throw new Error(
      `children failed (${codes.join(", ")}): ${kids.map((k) => k.stderrTail.join("\n")).join("\n")}`,
    );
  }
  return Float64Array.from(results.flat());
}

async function runVariant(v: Variant, seconds: number, dir: string): Promise<Result> {
  const file = join(dir, `${v.id}.db`);
  let lat: Float64Array;
  const t0 = performance.now();
  if (v.processes > 1) {
    lat = await runProcesses(file, v, seconds);
  } else {
    let redis: RedisServer | undefined;
    let store: Store;
    if (v.store === "redis") {
      redis = await startRedis();
      const r = new RedisStore(parseRedisUrl(redis.url));
      await r.ready();
      store = r;
    } else store = v.store === "memory" ? new MemoryStore() : new SqliteStore(file);
    try {
      lat = await runLocal(store, v.id, v.sessions, seconds);
    } finally {
      await store.close();
      await redis?.stop();
    }
  }
  const wall = v.processes > 1 ? seconds : (performance.now() - t0) / 1000;
  const sorted = lat.slice().sort();
  return {
    id: v.id,
    title: v.title,
    sessions: v.sessions,
    processes: v.processes,
    commits: lat.length,
    seconds: Math.round(wall * 100) / 100,
    perSecond: lat.length / wall,
    p50us: quantile(sorted, 0.5),
    p99us: quantile(sorted, 0.99),
    maxUs: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

function table(results: Result[]): string {
  return markdownTable(
    ["variant", "sessions", "processes", "commits", "commits/s", "p50 µs", "p99 µs", "max µs"],
    results.map((r) => [
      r.id,
      r.sessions,
      r.processes,
      r.commits,
      num(r.perSecond),
      num(r.p50us, 1),
      num(r.p99us, 1),
      num(r.maxUs, 0),
    ]),
  );
}

/** Finite numbers only: a chart shows the rest as "n/a". */
const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** Two charts: commits per second, and commit latency (p50, p99), per variant. */
function charts(results: Result[], seconds: number): { rate: string; latency: string } {
  return {
    rate: barChart({
      title: "Session-store commits per second",
      unit: "commits/s (all sessions together)",
      series: ["commits/s"],
      groups: results.map((r) => ({ label: r.id, values: [finite(r.perSecond)] })),
      log: true,
      note: `Each commit: a ${PAYLOAD}-byte reply and one publish of a ${PAYLOAD}-byte entry to a shared topic; ${seconds} s per variant. Log scale: memory is tens of times faster.`,
    }),
    latency: barChart({
      title: "Session-store commit latency",
      unit: "µs per awaited store.commit",
      series: ["p50", "p99"],
      groups: results.map((r) => ({ label: r.id, values: [finite(r.p50us), finite(r.p99us)] })),
      log: true,
    }),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string" },
      quick: { type: "boolean", default: false },
      variants: { type: "string" },
      out: { type: "string" },
      child: { type: "string" },
      name: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const seconds = Number(values.seconds ?? (values.quick ? 1 : 5));
  if (values.child !== undefined) return child(values.child, values.name ?? "child", seconds);
  if (values.help || !(seconds > 0)) {
    process.stdout.write(
      "usage: npx tsx bench/store.ts [--seconds S] [--quick] [--variants LIST] [--out DIR]\n",
    );
    process.exit(values.help ? 0 : 2);
  }
  const ids = values.variants?.split(",").map((s) => s.trim());
  const available = VARIANTS.filter((v) => v.store !== "redis" || redisServerPath !== undefined);
  const variants = ids ? available.filter((v) => ids.includes(v.id)) : available;
  if (variants.length === 0) throw new Error(`--variants: known are ${VARIANTS.map((v) => v.id).join(", ")}`);
  const out = resolve(values.out ?? join(repoRoot, "bench", "results"));

  const progress = new Progress();
  const dir = mkdtempSync(join(tmpdir(), "lifeline-bench-store-"));
  process.on("exit", () => {
    killAllSync();
    rmSync(dir, { recursive: true, force: true });
  });
  const results: Result[] = [];
  try {
    for (const v of variants) {
      progress.update(`${v.id}: ${v.title} (${seconds} s)`);
      results.push(await runVariant(v, seconds, dir));
      progress.log(`${v.id}: ${num(results.at(-1)!.perSecond)} commits/s`);
    }
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  const command = `npx tsx bench/store.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(" ")}` : ""}`;
  const host = hostInfo();
  const md = [
    `# ${NAME}`,
    "",
    `Command: \`${command}\`  `,
    `Date: ${new Date().toISOString()}  `,
    `Host: node ${host.node}, ${host.platform}, ${host.cpus} CPUs (${host.cpuModel}), load ${JSON.stringify(host.loadavg)}`,
    "",
    table(results),
    "",
    `![Commits per second per variant](${NAME}.svg)`,
    "",
    `![Commit latency p50 and p99 per variant](${NAME}-latency.svg)`,
    "",
    "Variants:",
    "",
    ...results.map((r) => `- \`${r.id}\`: ${r.title}`),
    "",
    `Each commit: a ${PAYLOAD}-byte reply and one publish of a ${PAYLOAD}-byte entry to a topic all`,
    "sessions share. Latency is the awaited `store.commit` call, measured in the committing process;",
    `commits/s counts all sessions together over the ${seconds} s window. SQLite: WAL, synchronous=NORMAL,`,
    "one BEGIN IMMEDIATE transaction per commit, file in the temporary directory. Redis: a local",
    "redis-server without persistence, one Lua script per commit (network round trip on loopback).",
    redisServerPath === undefined ? "Redis variants skipped: redis-server is not installed.\n" : "",
    "No classic row: the seed has no session store (its client keeps its queue in its own memory,",
    "which `memory-1` stands for), and `--profile classic` changes timeouts and probing, not the",
    "store; the end-to-end comparison with the seed's client is in throughput.md and failover.md.",
  ].join("\n");
  const paths = writeResults(
    out,
    NAME,
    { name: NAME, command, date: new Date().toISOString(), host, seconds, results },
    md,
  );
  const svg = charts(results, seconds);
  paths.push(writeChart(out, NAME, svg.rate), writeChart(out, `${NAME}-latency`, svg.latency));
  process.stdout.write(`${table(results)}\n`);
  progress.log(`results: ${paths.join(", ")}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`store bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
