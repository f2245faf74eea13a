/**
 * throughput: how many client messages per second does one `lifeline node` acknowledge
 * (with their replies), and how long does each wait — for 1, 10 and 100 concurrent clients,
 * on the memory, the SQLite and the Redis store?
 *
 *   npx tsx bench/throughput.ts [--seconds S] [--warmup S] [--window W] [--clients LIST]
 *                                    [--stores memory,sqlite,redis] [--payload BYTES] [--sqlite-dir DIR]
 *                                    [--quick] [--out DIR] [--run-id ID]
 *
 * Each cell (store × clients) starts a fresh `lifeline node --app echo` child (the SQLite
 * store in a file in a temporary directory, removed afterwards; `--sqlite-dir` chooses where
 * that directory is made: a tmpfs such as /dev/shm takes the disk out of the measurement;
 * Redis: a fresh `redis-server` per cell on a free loopback port, without persistence —
 * skipped, with a note, when redis-server is not installed). The clients run in this
 * process: each opens a session (ProtocolConnection, role client) and keeps up to W messages
 * in flight — every acknowledgement makes room for the next — so the node always has work.
 * A message counts when its acknowledgement arrives with its reply (the echo, checked
 * byte for byte); its latency runs from the send to that acknowledgement. After a warm-up
 * (not counted), S seconds are measured; then the clients stop sending, wait for what is
 * in flight, and close, and the node is stopped with SIGTERM (it must drain and exit 0).
 *
 * CPU: the node's from /proc/PID/stat (utime+stime over wall time, % of one core), and this
 * process's (the clients') from process.cpuUsage(), over the measured window. On a small
 * machine the two compete for the cores: the table says which one was saturated.
 *
 * `--classic LIST` also runs those client counts with one message in flight (the seed's
 * stop-and-wait client) for comparison (default 1,10).
 *
 * Defaults: S=5, warm-up 1 s, W=32, clients 1,10,100, payload 100 bytes; `--quick`: S=1,
 * warm-up 0.5 s. Prints a Markdown table on stdout and writes DIR/throughput.json and
 * .md, and two charts, throughput.svg (msgs/s) and throughput-latency.svg (DIR:
 * bench/results).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os, { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ProtocolConnection } from "../src/client/connection.ts";
import type { Message } from "../src/protocol/messages.ts";
import { type CommonOptions, numberArg, parseBenchArgs, pickList, UsageError } from "./lib/args.ts";
import {
  interrupted,
  leftBehind,
  leftovers,
  runBenchmark,
  startNode,
  stopAll,
  stopChild,
} from "./lib/children.ts";
import { machineCpuPercent, ProcSampler, readMachineCpu } from "./lib/proc.ts";
import { Progress } from "./lib/progress.ts";
import { type RedisServer, redisServerPath, startRedis } from "./lib/redis-server.ts";
import { markdownHeader, markdownTable, num, type RunStart, runFields, writeResults } from "./lib/report.ts";
import { quantile } from "./lib/stats.ts";
import { barChart, writeChart } from "./lib/svg-chart.ts";

const NAME = "throughput";
const STORES = ["memory", "sqlite", "redis"] as const;
type StoreKind = (typeof STORES)[number];

const USAGE = `usage: npx tsx bench/${NAME}.ts [options]
  --seconds S      measured seconds per cell (default 5; --quick 1)
  --warmup S       seconds of load before measuring (default 1; --quick 0.5)
  --window W       messages in flight per client (default 32)
  --clients LIST   concurrent clients, comma-separated (default 1,10,100)
  --classic LIST   client counts also run the seed's way, one message in flight (send, wait
                   for the reply), for comparison (default 1,10; --quick 1; "none": skip)
  --stores LIST    comma-separated subset of: ${STORES.join(", ")}
  --payload BYTES  message size (default 100, at least 8)
  --sqlite-dir DIR where the SQLite store's temporary directory is made (default: the OS temp dir)
  --quick          S=1, warm-up 0.5 s: a smoke run (explicit values still win)
  --out DIR        results directory (default bench/results)
  --run-id ID      tag for this run's child processes (default: random)`;

interface Options extends CommonOptions {
  seconds: number;
  warmup: number;
  window: number;
  clients: number[];
  /** Client counts also run with one message in flight (the seed's stop-and-wait client). */
  classic: number[];
  stores: StoreKind[];
  payload: number;
  sqliteDir: string;
}

function parseOptions(argv: string[]): Options {
  const { values, common } = parseBenchArgs(argv, USAGE, [
    "seconds",
    "warmup",
    "window",
    "clients",
    "classic",
    "stores",
    "payload",
    "sqlite-dir",
  ]);
  const quick = common.quick;
  const clients = (values.clients ?? "1,10,100").split(",").map((s) => numberArg("clients", s.trim(), 0));
  return {
    ...common,
    seconds: numberArg("seconds", values.seconds, quick ? 1 : 5, { min: 0.1, integer: false }),
    warmup: numberArg("warmup", values.warmup, quick ? 0.5 : 1, { min: 0, integer: false }),
    window: numberArg("window", values.window, 32),
    clients,
    classic:
      values.classic === "none"
        ? []
        : (values.classic ?? (quick ? "1" : "1,10")).split(",").map((v) => {
            const n = Number(v);
            if (!Number.isInteger(n) || n < 1) throw new UsageError(`--classic: bad client count ${v}`);
            return n;
          }),
    stores:
      values.stores === undefined
        ? STORES.filter((s) => s !== "redis" || redisServerPath !== undefined)
        : pickList("stores", values.stores, STORES),
    payload: numberArg("payload", values.payload, 100, { min: 8 }),
    sqliteDir: resolve(values["sqlite-dir"] ?? tmpdir()),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Latencies in ms, growing without reallocating per sample. */
class Samples {
  private buf = new Float64Array(1 << 16);
  n = 0;
  add(v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }
  sorted(): Float64Array {
    return this.buf.slice(0, this.n).sort();
  }
}

/** What every client of a cell shares: the measuring window and the counters. */
interface Shared {
  /** performance.now() bounds of the measured window; acknowledgements outside are not counted. */
  from: number;
  to: number;
  sending: boolean;
  latencies: Samples;
  acked: number;
  badReplies: number;
  missingReplies: number;
  errors: string[];
}

/**
 * One session keeping up to `window` messages in flight. Sequence numbers are consecutive
 * and acknowledgements cumulative, so the send times live in a ring indexed by seq % window.
 */
class BenchClient {
  private nextSeq = 1;
  private ackedUpTo = 0;
  private readonly sentAt: Float64Array;
  private readonly payload: Buffer;
  private closing = false;
  private onIdle: (() => void) | undefined;

  constructor(
    private readonly conn: ProtocolConnection,
    private readonly window: number,
    payloadSize: number,
    private readonly shared: Shared,
  ) {
    this.sentAt = new Float64Array(window);
    this.payload = Buffer.alloc(payloadSize, 0x61);
    conn.on("message", (m) => this.onMessage(m));
    conn.on("close", (info) => {
      if (!this.closing) shared.errors.push(`connection closed: ${info.error?.message ?? "by the node"}`);
      this.onIdle?.();
    });
    conn.start();
  }

  get inFlight(): number {
    return this.nextSeq - 1 - this.ackedUpTo;
  }

  fill(): void {
    while (this.shared.sending && this.inFlight < this.window && this.conn.isOpen) {
      const seq = this.nextSeq++;
      // The sequence in the first bytes, so that each reply can be checked against its message.
      const payload = Buffer.from(this.payload);
      payload.writeUInt32LE(seq, 0);
      this.sentAt[seq % this.window] = performance.now();
      this.conn.send({ type: "msg", seq, payload });
    }
  }

  private onMessage(m: Message): void {
    if (m.type === "error") {
      this.shared.errors.push(`${m.code}: ${m.message}`);
      return;
    }
    if (m.type !== "ack" || m.upTo <= this.ackedUpTo) return;
    const now = performance.now();
    const s = this.shared;
    const counting = now >= s.from && now <= s.to;
    let r = 0;
    for (let seq = this.ackedUpTo + 1; seq <= m.upTo; seq++) {
      // Replies come in sequence order with the acknowledgement that covers them.
      while (r < m.replies.length && m.replies[r]!.seq < seq) r++;
      const reply = m.replies[r];
      if (reply?.seq !== seq) s.missingReplies++;
      else {
        const p = reply.payload;
        if (
          p.length !== this.payload.length ||
          Buffer.from(p.buffer, p.byteOffset, 4).readUInt32LE(0) !== seq
        )
          s.badReplies++;
      }
      if (counting) {
        s.acked++;
        s.latencies.add(now - this.sentAt[seq % this.window]!);
      }
    }
    this.ackedUpTo = m.upTo;
    if (s.sending) this.fill();
    else if (this.inFlight === 0) this.onIdle?.();
  }

  /** Resolves when nothing is in flight any more (or after `ms`, or when the connection closes). */
  idle(ms: number): Promise<void> {
    if (this.inFlight === 0 || !this.conn.isOpen) return Promise.resolve();
    return new Promise((resolvePromise) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolvePromise();
      }
      this.onIdle = done;
    });
  }

  close(): void {
    this.closing = true;
    this.conn.close();
  }
}

interface Cell {
  store: StoreKind;
  clients: number;
  window: number;
  payload: number;
  measuredSeconds: number;
  acked: number;
  perSecond: number;
  p50ms: number;
  p99ms: number;
  maxMs: number;
  nodeCpu: number;
  nodeCpuMax: number;
  nodeRssMaxMb: number;
  clientCpu: number;
  /** CPU used by everything else on the machine over the window, % of one core. */
  otherCpu: number;
  badReplies: number;
  missingReplies: number;
  errors: string[];
  nodePid: number;
  nodeExit: number | string;
  nodeStderrTail: string[];
  connectMs: number;
}

const allPids: number[] = [];
const tempDirs: string[] = [];
/** Every temporary directory made, for the results (all are removed). */
const madeDirs: string[] = [];
const progress = new Progress();
let openClients: BenchClient[] = [];
let redis: RedisServer | undefined;

async function runCell(store: StoreKind, clients: number, label: string, opts: Options): Promise<Cell> {
  let url = "memory";
  if (store === "sqlite") {
    const dir = mkdtempSync(join(opts.sqliteDir, "lifeline-bench-throughput-"));
    tempDirs.push(dir);
    madeDirs.push(dir);
    url = `sqlite:${join(dir, "node.db")}`;
  } else if (store === "redis") {
    progress.update(`${label} starting redis-server…`);
    redis = await startRedis();
    if (redis.process?.pid) allPids.push(redis.process.pid);
    url = redis.url;
  }
  progress.update(`${label} starting the node…`);
  const { child: node, port } = await startNode({
    name: `node ${store}`,
    id: `${opts.runId}-${store}-${clients}`,
    store: url,
    pids: allPids,
  });

  progress.update(`${label} connecting ${clients} clients…`);
  const shared: Shared = {
    from: Number.POSITIVE_INFINITY,
    to: Number.POSITIVE_INFINITY,
    sending: true,
    latencies: new Samples(),
    acked: 0,
    badReplies: 0,
    missingReplies: 0,
    errors: [],
  };
  const c0 = performance.now();
  const conns = await Promise.all(
    Array.from({ length: clients }, () =>
      ProtocolConnection.connect({
        address: `127.0.0.1:${port}`,
        role: "client",
        timeout: 15_000,
        name: "bench throughput",
      }),
    ),
  );
  const connectMs = performance.now() - c0;
  const list = conns.map((c) => new BenchClient(c, opts.window, opts.payload, shared));
  openClients = list;

  for (const c of list) c.fill();
  await sleep(opts.warmup * 1000);
  if (interrupted()) throw new Error("interrupted");

  const sampler = new ProcSampler(node.pid);
  const machine0 = readMachineCpu();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  shared.from = t0;
  shared.to = t0 + opts.seconds * 1000;
  const end = shared.to;
  for (let i = 1; performance.now() < end; i++) {
    await sleep(Math.min(end, t0 + i * 1000) - performance.now());
    if (interrupted()) throw new Error("interrupted");
    const s = sampler.sample();
    if (!s) throw new Error(`${node.name} (pid ${node.pid}) has gone:\n${node.stderrTail.join("\n")}`);
    const elapsed = (performance.now() - t0) / 1000;
    progress.update(
      `${label} ${num(elapsed, 1)}/${opts.seconds} s · ${num(shared.acked / elapsed)} msgs/s · node cpu ${num(s.cpu)}%`,
    );
  }
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  sampler.sample();
  const machine = machineCpuPercent(machine0, readMachineCpu(), os.cpus().length);
  shared.sending = false;
  const measured = (t1 - t0) / 1000;

  progress.update(`${label} draining…`);
  await Promise.all(list.map((c) => c.idle(10_000)));
  for (const c of list) c.close();
  openClients = [];

  progress.update(`${label} stopping the node…`);
  const exit = await stopChild(node, "SIGTERM", 15_000);
  await redis?.stop();
  redis = undefined;
  const sorted = shared.latencies.sorted();
  const nodeCpu = sampler.meanCpu();
  const clientCpu = ((cpu.user + cpu.system) / 1000 / (t1 - t0)) * 100;
  return {
    store,
    clients,
    window: opts.window,
    payload: opts.payload,
    measuredSeconds: measured,
    acked: shared.acked,
    perSecond: shared.acked / measured,
    p50ms: quantile(sorted, 0.5),
    p99ms: quantile(sorted, 0.99),
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
    nodeCpu,
    nodeCpuMax: sampler.max("cpu"),
    nodeRssMaxMb: sampler.max("rssMb"),
    clientCpu,
    otherCpu: Math.max(0, machine - nodeCpu - clientCpu),
    badReplies: shared.badReplies,
    missingReplies: shared.missingReplies,
    errors: shared.errors.slice(0, 20),
    nodePid: node.pid,
    nodeExit: exit,
    nodeStderrTail: node.stderrTail.slice(-10),
    connectMs,
  };
}

/** Which side was saturated: a process near 100 % of a core (both may be), or the cores. */
function bottleneck(c: Cell): string {
  const parts: string[] = [];
  if (c.nodeCpu >= 90) parts.push("node");
  if (c.clientCpu >= 90) parts.push("clients");
  const busy = c.nodeCpu + c.clientCpu + (Number.isFinite(c.otherCpu) ? c.otherCpu : 0);
  if (parts.length === 0 && busy >= os.cpus().length * 100 * 0.9) parts.push("cores");
  return parts.join(" + ") || "-";
}

function table(cells: Cell[]): string {
  return markdownTable(
    [
      "store",
      "clients",
      "in flight/client",
      "msgs/s",
      "p50 ms",
      "p99 ms",
      "max ms",
      "node CPU %",
      "clients CPU %",
      "other CPU %",
      "saturated",
      "errors",
    ],
    cells.map((c) => [
      c.store,
      c.clients,
      c.window,
      num(c.perSecond),
      num(c.p50ms, 2),
      num(c.p99ms, 2),
      num(c.maxMs, 1),
      num(c.nodeCpu),
      num(c.clientCpu),
      num(c.otherCpu),
      bottleneck(c),
      c.errors.length + c.badReplies + c.missingReplies + (c.nodeExit === 0 ? 0 : 1),
    ]),
  );
}

function notes(cells: Cell[]): string[] {
  const out: string[] = [];
  for (const c of cells) {
    const id = `${c.store}, ${c.clients} clients`;
    if (c.errors.length > 0) out.push(`- ${id}: ${c.errors.length} errors, e.g. ${c.errors[0]}`);
    if (c.badReplies > 0) out.push(`- ${id}: ${c.badReplies} replies did not echo their message`);
    if (c.missingReplies > 0) out.push(`- ${id}: ${c.missingReplies} acknowledgements came without a reply`);
    if (c.nodeExit !== 0)
      out.push(`- ${id}: the node exited with ${c.nodeExit} after SIGTERM: ${c.nodeStderrTail.at(-1) ?? ""}`);
  }
  return out;
}

/** The type of the file system holding `path` (longest mount point in /proc/mounts), if known. */
function fsType(path: string): string | undefined {
  try {
    let best: { at: string; type: string } | undefined;
    for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
      const [, at, type] = line.split(" ");
      if (!at || !type) continue;
      const inside = path === at || path.startsWith(at.endsWith("/") ? at : `${at}/`);
      if (inside && (!best || at.length > best.at.length)) best = { at, type };
    }
    return best?.type;
  } catch {
    return undefined;
  }
}

function settingsLine(opts: Options): string {
  const fs = fsType(opts.sqliteDir);
  const sqlite = opts.stores.includes("sqlite")
    ? ` SQLite file under ${opts.sqliteDir}${fs ? ` (${fs})` : ""}.`
    : "";
  return (
    `Each client keeps up to W=${opts.window} messages in flight; ${opts.payload}-byte messages, echo app; ` +
    `${opts.seconds} s measured per cell after a ${opts.warmup} s warm-up; a fresh node per cell.${sqlite}` +
    (opts.stores.includes("redis") ? " Redis: a local redis-server per cell, no persistence." : "") +
    (redisServerPath === undefined ? " Redis skipped: redis-server is not installed." : "")
  );
}

/** Chart file names (without .svg), written next to the results. */
const CHARTS = { rate: NAME, latency: `${NAME}-latency` } as const;

/** Two charts: messages per second, and latency (p50, p99), per store and client count. */
function charts(cells: Cell[], opts: Options): Record<keyof typeof CHARTS, string> {
  const series = opts.clients.map((n) => `${n} client${n === 1 ? "" : "s"}`);
  const value = (store: StoreKind, clients: number, f: (c: Cell) => number): number | null => {
    const c = cells.find((x) => x.store === store && x.clients === clients && x.window === opts.window);
    return c && Number.isFinite(f(c)) ? f(c) : null;
  };
  return {
    rate: barChart({
      title: "lifeline node throughput (acknowledged messages per second)",
      unit: "msgs/s",
      series,
      groups: opts.stores.map((store) => ({
        label: store,
        values: opts.clients.map((n) => value(store, n, (c) => c.perSecond)),
      })),
      note: `${opts.window} messages in flight per client, ${opts.payload}-byte messages, echo app, one node; clients in one process on the same machine.`,
    }),
    latency: barChart({
      title: "Time from send to acknowledgement",
      unit: "ms",
      series,
      groups: opts.stores.flatMap((store) =>
        (["p50", "p99"] as const).map((q) => ({
          label: `${store} ${q}`,
          values: opts.clients.map((n) => value(store, n, (c) => (q === "p50" ? c.p50ms : c.p99ms))),
        })),
      ),
      log: true,
      note: `With ${opts.window} messages in flight per client, latency grows with the queue: more clients, longer waits.`,
    }),
  };
}

function markdown(cells: Cell[], opts: Options, run: RunStart): string {
  const lines = [
    ...markdownHeader(run),
    "",
    settingsLine(opts),
    "",
    table(cells),
    "",
    `![Messages per second per store and client count](${CHARTS.rate}.svg)`,
    "",
    `![Latency p50 and p99 per store and client count](${CHARTS.latency}.svg)`,
    "",
    "Columns: msgs/s counts messages whose acknowledgement (with the reply, checked) arrived in the",
    "measured window, over its length; latency runs from the send to that acknowledgement, measured",
    "in the client process. One `lifeline node` child (`--store memory`, `--store sqlite:FILE` with",
    "the file in a temporary directory, or `--store redis://…` on a fresh local redis-server without",
    "persistence); the clients are sessions in the benchmark process",
    "(ProtocolConnection). CPU is % of one core over the window: the node from /proc/PID/stat, the",
    "clients from process.cpuUsage(); `other`: the rest of the machine (/proc/stat), which should be",
    "near 0 for the numbers to hold. `saturated`: `node` and/or `clients` when that process used",
    "≥ 90 % of a core (a single-threaded event loop: that is its limit), `cores` when together with",
    "the rest of the machine they used ≥ 90 % of its cores. `errors`: protocol errors, replies that",
    "did not echo their message, acknowledgements without a reply, and a node that did not exit 0",
    "after SIGTERM.",
    "",
    "Rows with 1 message in flight per client are the seed's way of sending (write a message, wait",
    "for its reply, then the next: what a blocking socket client does), on the same node, store and",
    "machine in the same run: the classic comparison. Lifeline's client keeps W in flight, with",
    "exactly-once replies, because the node acknowledges cumulatively and in order.",
  ];
  const n = notes(cells);
  if (n.length > 0) lines.push("", "Notes:", "", ...n);
  return `${lines.join("\n")}\n`;
}

async function cleanup(): Promise<void> {
  for (const c of openClients) c.close();
  openClients = [];
  await stopAll(3000);
  await redis?.stop();
  redis = undefined;
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

async function main(opts: Options, run: RunStart): Promise<number> {
  progress.log(`${NAME}: ${settingsLine(opts)} (run ${opts.runId})`);
  const cells: Cell[] = [];
  const total = opts.stores.length * (opts.clients.length + opts.classic.length);
  // Lifeline's clients (W in flight), then the seed's way (one in flight) for comparison.
  const plan = [
    ...opts.clients.map((clients) => ({ clients, cellOpts: opts })),
    ...opts.classic.map((clients) => ({ clients, cellOpts: { ...opts, window: 1 } })),
  ];
  for (const store of opts.stores) {
    for (const { clients, cellOpts } of plan) {
      const how = cellOpts.window === 1 ? "1 in flight" : `${cellOpts.window} in flight`;
      const label = `[${cells.length + 1}/${total} ${store}, ${clients} clients, ${how}]`;
      const c = await runCell(store, clients, label, cellOpts);
      cells.push(c);
      progress.log(
        `${label} ${num(c.perSecond)} msgs/s, p50 ${num(c.p50ms, 2)} ms, p99 ${num(c.p99ms, 2)} ms, ` +
          `node cpu ${num(c.nodeCpu)}%, clients cpu ${num(c.clientCpu)}%`,
      );
    }
  }
  await cleanup();
  progress.clear();

  const left = leftovers(allPids, [`--id ${opts.runId}-`]);
  const md = markdown(cells, opts, run);
  const json = {
    ...runFields(run),
    settings: {
      seconds: opts.seconds,
      warmupSeconds: opts.warmup,
      window: opts.window,
      clients: opts.clients,
      stores: opts.stores,
      payloadBytes: opts.payload,
      sqliteDir: opts.sqliteDir,
      sqliteFs: fsType(opts.sqliteDir) ?? null,
      quick: opts.quick,
      runId: opts.runId,
    },
    childPids: allPids,
    leftoverPids: left,
    tempDirs: madeDirs,
    cells,
  };
  const paths = writeResults(opts.out, NAME, json, md);
  const svg = charts(cells, opts);
  paths.push(writeChart(opts.out, CHARTS.rate, svg.rate), writeChart(opts.out, CHARTS.latency, svg.latency));
  process.stdout.write(`${settingsLine(opts)}\n\n${table(cells)}\n`);
  const n = notes(cells);
  if (n.length > 0) process.stdout.write(`\n${n.join("\n")}\n`);
  progress.log(`results: ${paths.join(", ")}`);
  return leftBehind(progress, left);
}

runBenchmark({
  name: NAME,
  usage: USAGE,
  parse: parseOptions,
  main,
  cleanup,
  progress,
  atExit: () => {
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  },
});
