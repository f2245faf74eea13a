/**
 * The herd: 1,000 clients, one node killed — how the clients spread over the survivors and
 * how long until all of them resumed, for Lifeline's client and the seed's loop
 * (`strategy: "classic"`), side by side in the same run.
 *
 *   npx tsx bench/herd.ts [--clients 1000] [--procs 4] [--rate 1] [--quick] [--out DIR]
 *
 * Each strategy gets a phase of its own, on a fresh cluster (same machine state): three
 * `lifeline node` processes sharing one SQLite file (in /dev/shm when there is one, so
 * sessions resume on another node), running bench/lib/herd-app.ts (echo, and each message
 * recorded in a topic in the same commit). `--clients` clients connect, all of them to n1:
 * Lifeline's clients are given only n1's address and learn n2 and n3 from its TOPOLOGY
 * (given all three they would spread at once, and a kill would move only a third); the
 * classic clients are given n1, n2, n3 in that order, the seed's configuration, and so all
 * sit on n1 too. This is the worst case — every client moves at once — and the same
 * starting point for both. Each client sends `--rate` messages a second (random phase) and
 * checks every reply. After a warm-up, n1 gets SIGKILL.
 *
 * Measured from the signal: each client's first `connected` after it lost n1 (first / 50 %
 * / 90 % / 99 % / all of them), and the last `connected` of any client (`settled`: includes
 * clients moved again); where they landed (count per survivor, largest share); its
 * transport's connect attempts until then; clients thrown off a survivor afterwards (a
 * `disconnected` from n2 or n3); sessions lost (a `session-lost`, a new session id, or a
 * connect without resume: must be 0). Once every client has resumed and none has connected
 * for a while, traffic stops and every client flushes and closes. Messages: `lost` = sent and
 * never answered, or answered but not in the store; `duplicated` = a reply that was not its
 * message, or a message committed twice (the topic, read from the file after the nodes
 * stopped). Every session in the file must have processed exactly what its client sent.
 *
 * The clients run in `--procs` child processes (bench/lib/herd-clients.ts), not in this one:
 * a thousand reconnects handled by one event loop would queue behind each other and the
 * measurement would be mostly that queue; this process only signals, collects and times
 * (wall-clock timestamps, comparable across processes). On a 2-core machine 4 processes
 * of 250 keep each loop short without crowding the nodes out; at 1 message a second the
 * load is ~1,000 messages/s (each a SQLite commit), well under what a node sustains.
 *
 * Every node holds up to `--clients` connections: the descriptor limit (`ulimit -n`) must
 * allow that; the benchmark checks and says so instead of raising anything.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LocalCluster } from "../src/cli/local-cluster.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { killAllSync, type NodeChild, repoRoot, spawnNode, stopChild } from "./lib/children.ts";
import type { ClientResult, HerdClientsConfig } from "./lib/herd-clients.ts";
import { clockTicksPerSecond, machineCpuPercent, readMachineCpu, readProc } from "./lib/proc.ts";
import { Progress } from "./lib/progress.ts";
import { hostInfo, markdownTable, num, writeResults } from "./lib/report.ts";
import { quantile } from "./lib/stats.ts";
import { barChart, writeChart } from "./lib/svg-chart.ts";

const { values: args } = parseArgs({
  options: {
    clients: { type: "string" },
    procs: { type: "string" },
    rate: { type: "string", default: "1" },
    quick: { type: "boolean", default: false },
    out: { type: "string", default: join(repoRoot, "bench", "results") },
  },
});
const CLIENTS = Number(args.clients ?? (args.quick ? 100 : 1000));
const PROCS = Math.max(1, Math.min(CLIENTS, Number(args.procs ?? (args.quick ? 2 : 4))));
const RATE = Number(args.rate);
/** Traffic before the kill, ms. */
const WARMUP = args.quick ? 1500 : 3000;
/** Quiet time (every client resumed, no connect) that ends a phase, ms. */
const SETTLE = args.quick ? 1500 : 3000;
/** Longest wait for the clients after the kill, ms. */
const CAP = 30_000;
const STRATEGIES = ["lifeline", "classic"] as const;
type Strategy = (typeof STRATEGIES)[number];
const VICTIM = "n1";

for (const [name, v] of Object.entries({ clients: CLIENTS, procs: PROCS, rate: RATE })) {
  if (!(Number.isFinite(v) && v > 0)) {
    process.stderr.write(`--${name} must be a positive number\n`);
    process.exit(2);
  }
}

/** The soft limit on open files, from /proc (Linux); undefined elsewhere. */
function nofileLimit(): number | undefined {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === "unlimited" ? Number.POSITIVE_INFINITY : Number(soft);
  } catch {
    return undefined;
  }
}
// A node holds every client's connection, plus its store, peers and admin server.
const needed = CLIENTS + 256;
const limit = nofileLimit();
if (limit !== undefined && limit < needed) {
  process.stderr.write(
    `herd: ${CLIENTS} clients on one node need about ${needed} file descriptors, and \`ulimit -n\` is ${limit}. ` +
      `Raise it in this shell (ulimit -n ${needed}, up to the hard limit) or use fewer --clients; the benchmark raises nothing itself.\n`,
  );
  process.exit(2);
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
const dir = mkdtempSync(join(base, "lifeline-herd-bench-"));
const progress = new Progress();
const pids: number[] = [];
let cluster: LocalCluster | undefined;
let children: NodeChild[] = [];
let stopping = false;

/** Stops everything this run started (client processes, nodes) and removes its folder. */
async function cleanup(): Promise<void> {
  await Promise.all(children.map((c) => stopChild(c, "SIGTERM", 1000)));
  children = [];
  await cluster?.close(500);
  cluster = undefined;
  rmSync(dir, { recursive: true, force: true });
}
for (const [sig, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    progress.log(`herd: ${sig}, stopping`);
    void cleanup().finally(() => process.exit(code));
  });
}
// Last resort (an exception on the way out): no process or folder left behind.
process.on("exit", () => {
  killAllSync();
  rmSync(dir, { recursive: true, force: true });
});

interface Tick {
  onVictim: number;
  left: number;
  resumed: number;
  lastConnectAt: number;
}

interface Phase {
  strategy: Strategy;
  clients: number;
  onVictim: number;
  killAt: number;
  exitedAfter: number;
  /** % of one core from the kill until every client resumed. */
  cpu: { seconds: number; nodes: number; clients: number; bench: number; other: number };
  /** The client processes' event-loop delay (worst process), ms. */
  loopLag: { p99: number; max: number };
  results: ClientResult[];
  store: { entries: Map<string, number>; badSessions: string[] };
  nodeErrors: string[];
}

function cpuSince(
  from: {
    machine: ReturnType<typeof readMachineCpu>;
    procs: Map<number, number>;
    self: NodeJS.CpuUsage;
    at: number;
  },
  nodes: number[],
  clients: number[],
): Phase["cpu"] {
  const seconds = (now() - from.at) / 1000;
  const hz = clockTicksPerSecond();
  const pct = (pids: number[]) =>
    (pids.reduce((a, pid) => a + ((readProc(pid)?.cpuTicks ?? 0) - (from.procs.get(pid) ?? 0)), 0) /
      hz /
      seconds) *
    100;
  const self = process.cpuUsage(from.self);
  const bench = ((self.user + self.system) / 1e6 / seconds) * 100;
  const n = pct(nodes);
  const c = pct(clients);
  const machine = machineCpuPercent(from.machine, readMachineCpu(), os.cpus().length);
  return { seconds, nodes: n, clients: c, bench, other: Math.max(0, machine - n - c - bench) };
}

/** One strategy: a fresh cluster, the clients, the kill, the results. */
async function runPhase(strategy: Strategy): Promise<Phase> {
  const db = join(dir, `${strategy}.db`);
  const nodeErrors: string[] = [];
  cluster = new LocalCluster({
    store: `sqlite:${db}`,
    app: join(repoRoot, "bench", "lib", "herd-app.ts"),
    detached: true,
    onSpawn: (_, pid) => pids.push(pid),
    onLog: (id, line) => {
      if (/"level":(50|60)/.test(line) && nodeErrors.length < 20) nodeErrors.push(`${id}: ${line}`);
    },
  });
  await cluster.start();
  const addresses = cluster.addresses;
  const servers = strategy === "lifeline" ? [cluster.node(VICTIM).address] : addresses;

  const ticks: Tick[] = [];
  let results: ClientResult[] = [];
  const loopLag: Array<{ p99: number; max: number }> = [];
  const ready: Array<Promise<void>> = [];
  const done: Array<Promise<void>> = [];
  for (let p = 0, first = 0; p < PROCS; p++) {
    const count = Math.floor(CLIENTS / PROCS) + (p < CLIENTS % PROCS ? 1 : 0);
    const cfg: HerdClientsConfig = {
      strategy,
      servers,
      all: addresses,
      victim: VICTIM,
      count,
      first,
      rate: RATE,
      batch: 50,
    };
    first += count;
    let onReady!: () => void;
    let onResult!: () => void;
    ready.push(new Promise<void>((r) => (onReady = r)));
    done.push(new Promise<void>((r) => (onResult = r)));
    const child = spawnNode(`herd-clients-${p}`, join(repoRoot, "bench", "lib", "herd-clients.ts"), [], {
      env: { ...process.env, HERD_CONFIG: JSON.stringify(cfg) },
      onLine: (m) => {
        if (m.type === "ready") onReady();
        else if (m.type === "tick") ticks[p] = m as unknown as Tick;
        else if (m.type === "result") {
          results = results.concat(m.clients as ClientResult[]);
          loopLag.push(m.loopLag as { p99: number; max: number });
          onResult();
        }
      },
    });
    pids.push(child.pid);
    children.push(child);
    // A client process that dies before its result fails the phase, with its last words.
    const failed = child.exited.then((code) => {
      throw new Error(`${child.name} exited (${code}): ${child.stderrTail.slice(-5).join(" | ")}`);
    });
    ready[p] = Promise.race([ready[p]!, failed]);
    done[p] = Promise.race([done[p]!, failed]);
    // Awaited later (or never, when interrupted): not an unhandled rejection meanwhile.
    ready[p]!.catch(() => {});
    done[p]!.catch(() => {});
  }
  await Promise.all(ready);
  progress.log(
    `${strategy}: ${CLIENTS} clients connected in ${PROCS} processes, sending; kill ${VICTIM} in ${WARMUP / 1000} s`,
  );
  await sleep(WARMUP);

  const sum = (k: keyof Tick) => ticks.reduce((a, t) => a + (t?.[k] ?? 0), 0);
  const onVictim = sum("onVictim");
  // CPU from the kill until every client resumed: the survivors, the client processes, this
  // one, and the rest of the machine (other work on it distorts the numbers).
  const survivors = cluster.nodes.filter((n) => n.id !== VICTIM).map((n) => n.pid!);
  const clientPids = children.map((c) => c.pid);
  const cpu0 = {
    machine: readMachineCpu(),
    procs: new Map([...survivors, ...clientPids].map((pid) => [pid, readProc(pid)?.cpuTicks ?? 0])),
    self: process.cpuUsage(),
    at: now(),
  };
  const killAt = now();
  await cluster.kill(VICTIM);
  // The kernel closes a killed process's sockets as it tears the process down: no client
  // can notice before that. Its exit (seen here) is an upper bound.
  const exitedAfter = now() - killAt;
  // Until every client that was on the victim has resumed somewhere, then quiet for SETTLE.
  let cpu: Phase["cpu"] | undefined;
  for (;;) {
    await sleep(100);
    const t = now();
    const resumed = sum("resumed");
    const last = Math.max(killAt, ...ticks.map((x) => x?.lastConnectAt ?? 0));
    progress.update(
      `${strategy}: ${resumed}/${onVictim} resumed, ${((t - killAt) / 1000).toFixed(1)} s after the kill`,
    );
    if (!cpu && resumed >= onVictim) cpu = cpuSince(cpu0, survivors, clientPids);
    if (resumed >= onVictim && t - last >= SETTLE) break;
    if (t - killAt > CAP) {
      progress.log(`${strategy}: ${onVictim - resumed} clients not resumed within ${CAP / 1000} s`);
      cpu ??= cpuSince(cpu0, survivors, clientPids);
      break;
    }
  }
  progress.clear();
  for (const c of children) c.child.stdin?.write(`${JSON.stringify({ cmd: "stop" })}\n`);
  await Promise.all(done);
  await Promise.all(children.map((c) => stopChild(c, "SIGTERM", 5000)));
  children = [];
  await cluster.close();
  cluster = undefined;

  // The file, after the nodes stopped: each message committed once, each session at the
  // sequence its client reached.
  const store = new SqliteStore(db);
  const entries = new Map<string, number>();
  const badSessions: string[] = [];
  try {
    for (let after = 0; ; ) {
      const page = await store.readTopic("runs", after, 10_000);
      if (page.length === 0) break;
      for (const e of page) {
        const id = Buffer.from(e.payload).toString("utf8");
        entries.set(id, (entries.get(id) ?? 0) + 1);
      }
      after = page[page.length - 1]!.offset;
    }
    for (const r of results) {
      const s = r.session ? await store.getSession(r.session) : undefined;
      if (!s || s.lastClientSeq !== r.sent)
        badSessions.push(`c${r.i}: ${s ? `at ${s.lastClientSeq}, sent ${r.sent}` : "not in the store"}`);
    }
  } finally {
    await store.close();
  }
  return {
    strategy,
    clients: CLIENTS,
    onVictim,
    killAt,
    exitedAfter,
    cpu: cpu!,
    loopLag: { p99: Math.max(...loopLag.map((l) => l.p99)), max: Math.max(...loopLag.map((l) => l.max)) },
    results,
    store: { entries, badSessions },
    nodeErrors,
  };
}

/** The numbers of one phase. */
function summarize(p: Phase) {
  const rs = p.results;
  const moved = rs.filter((r) => r.leftAt !== undefined);
  const since = (t: number) => t - p.killAt;
  const resume = moved
    .filter((r) => r.resumeAt !== undefined)
    .map((r) => since(r.resumeAt!))
    .sort((a, b) => a - b);
  const detect = moved.map((r) => since(r.leftAt!)).sort((a, b) => a - b);
  // Each client's own failover: from noticing the loss to resuming.
  const own = moved
    .filter((r) => r.resumeAt !== undefined)
    .map((r) => r.resumeAt! - r.leftAt!)
    .sort((a, b) => a - b);
  const settled = Math.max(...moved.map((r) => (r.lastConnectAt ? since(r.lastConnectAt) : 0)), 0);
  const landed: Record<string, number> = {};
  for (const r of moved) if (r.resumeNode) landed[r.resumeNode] = (landed[r.resumeNode] ?? 0) + 1;
  const final: Record<string, number> = {};
  for (const r of rs) if (r.nodeEnd) final[r.nodeEnd] = (final[r.nodeEnd] ?? 0) + 1;
  const survivors = ["n2", "n3"];
  const maxShare = resume.length
    ? Math.max(...survivors.map((n) => landed[n] ?? 0)) / resume.length
    : Number.NaN;
  const attempts = moved.filter((r) => r.resumeAt !== undefined).map((r) => r.attempts);
  const thrown = rs.filter((r) => r.thrownOff.length > 0);
  const why: Record<string, number> = {};
  for (const r of thrown) for (const c of r.thrownOff) why[c] = (why[c] ?? 0) + 1;
  const sessionsLost = rs.filter(
    (r) => r.sessionLost > 0 || r.sessionEnd !== r.session || r.resumed === false || r.resumeNode === VICTIM,
  ).length;
  const sent = rs.reduce((a, r) => a + r.sent, 0);
  const answered = rs.reduce((a, r) => a + r.answered, 0);
  const failed: Record<string, number> = {};
  for (const r of rs) for (const [c, n] of Object.entries(r.failed)) failed[c] = (failed[c] ?? 0) + n;
  // Answered, but the store has no entry: the reply did not come from a commit.
  let notInStore = 0;
  let committedTwice = 0;
  for (const r of rs) {
    for (let n = 1; n <= r.sent; n++) {
      const k = p.store.entries.get(`c${r.i}-${n}`) ?? 0;
      if (k > 1) committedTwice += k - 1;
    }
  }
  for (const r of rs)
    for (let n = 1; n <= r.answered; n++) if (!p.store.entries.has(`c${r.i}-${n}`)) notInStore++;
  const mismatched = rs.reduce((a, r) => a + r.mismatched, 0);
  const crossed = rs.flatMap((r) => r.crossed).sort((a, b) => a - b);
  return {
    strategy: p.strategy,
    clients: p.clients,
    onVictimAtKill: p.onVictim,
    moved: moved.length,
    resumed: resume.length,
    notResumed: moved.length - resume.length,
    resumeMs: {
      first: resume[0],
      p50: quantile(resume, 0.5),
      p90: quantile(resume, 0.9),
      p99: quantile(resume, 0.99),
      all: resume[resume.length - 1],
    },
    settledMs: settled,
    victimExitMs: p.exitedAfter,
    noticedMs: { first: detect[0], p50: quantile(detect, 0.5), max: detect[detect.length - 1] },
    noticedToResumedMs: { p50: quantile(own, 0.5), p90: quantile(own, 0.9), max: own[own.length - 1] },
    landed,
    final,
    maxShare,
    attempts: {
      mean: attempts.reduce((a, b) => a + b, 0) / (attempts.length || 1),
      max: Math.max(0, ...attempts),
      histogram: attempts.reduce<Record<number, number>>((h, a) => {
        h[a] = (h[a] ?? 0) + 1;
        return h;
      }, {}),
    },
    thrownOff: { clients: thrown.length, times: thrown.reduce((a, r) => a + r.thrownOff.length, 0), why },
    sessionsLost,
    sessionsWrongInStore: p.store.badSessions,
    messages: {
      sent,
      answered,
      lost: sent - answered + notInStore,
      failed,
      notInStore,
      duplicated: mismatched + committedTwice,
      mismatched,
      committedTwice,
      crossed: crossed.length,
      crossedP50: quantile(crossed, 0.5),
      crossedMax: crossed[crossed.length - 1],
      slowest: Math.max(0, ...rs.map((r) => r.maxLatency)),
    },
    cpu: p.cpu,
    clientLoopLagMs: p.loopLag,
    nodeErrors: p.nodeErrors,
    resumeTimes: resume.map((t) => Math.round(t * 10) / 10),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const summaries: Array<ReturnType<typeof summarize>> = [];
  for (const strategy of STRATEGIES) {
    if (stopping) return;
    const phase = await runPhase(strategy);
    const s = summarize(phase);
    summaries.push(s);
    progress.log(
      `${strategy}: ${s.resumed}/${s.moved} resumed, all in ${num(s.resumeMs.all, 0)} ms, landed ${JSON.stringify(s.landed)}, ` +
        `${s.sessionsLost} sessions lost, ${s.messages.lost} messages lost, ${s.messages.duplicated} duplicated`,
    );
  }
  if (stopping) return;

  const ms = (v: number | undefined) => num(v, 1);
  const t1 = markdownTable(
    [
      "strategy",
      `on ${VICTIM}`,
      "resumed",
      "noticed 50% ms",
      "first ms",
      "50% ms",
      "90% ms",
      "99% ms",
      "all ms",
      "settled ms",
      "n2",
      "n3",
      "max share",
      "attempts mean",
      "attempts max",
      "thrown off",
    ],
    summaries.map((s) => [
      s.strategy,
      s.moved,
      s.resumed,
      ms(s.noticedMs.p50),
      ms(s.resumeMs.first),
      ms(s.resumeMs.p50),
      ms(s.resumeMs.p90),
      ms(s.resumeMs.p99),
      ms(s.resumeMs.all),
      ms(s.settledMs),
      s.landed.n2 ?? 0,
      s.landed.n3 ?? 0,
      `${num(s.maxShare * 100, 0)}%`,
      num(s.attempts.mean, 2),
      s.attempts.max,
      s.thrownOff.clients,
    ]),
  );
  const t2 = markdownTable(
    [
      "strategy",
      "sessions lost",
      "msgs sent",
      "answered",
      "held by the failover",
      "their p50 ms",
      "their max ms",
      "lost",
      "duplicated",
      "survivors CPU %",
      "clients CPU %",
      "other CPU %",
      "client loop lag max ms",
    ],
    summaries.map((s) => [
      s.strategy,
      s.sessionsLost + s.sessionsWrongInStore.length,
      s.messages.sent,
      s.messages.answered,
      s.messages.crossed,
      ms(s.messages.crossedP50),
      ms(s.messages.crossedMax),
      s.messages.lost,
      s.messages.duplicated,
      num(s.cpu.nodes, 0),
      num(s.cpu.clients, 0),
      num(s.cpu.other, 0),
      num(s.clientLoopLagMs.max, 0),
    ]),
  );
  const host = hostInfo();
  const notes: string[] = [];
  for (const s of summaries) {
    if (s.thrownOff.clients > 0)
      notes.push(
        `${s.strategy}: ${s.thrownOff.clients} clients were thrown off a survivor after resuming (${s.thrownOff.times} times: ${JSON.stringify(s.thrownOff.why)}); they resumed again (\`settled\`).`,
      );
    if (s.notResumed > 0)
      notes.push(`${s.strategy}: ${s.notResumed} clients did not resume within ${CAP / 1000} s.`);
    if (s.onVictimAtKill !== s.clients)
      notes.push(`${s.strategy}: ${s.clients - s.onVictimAtKill} clients were not on ${VICTIM} at the kill.`);
    if (s.sessionsWrongInStore.length > 0)
      notes.push(
        `${s.strategy}: sessions not where their clients left them: ${s.sessionsWrongInStore.slice(0, 5).join("; ")}`,
      );
    if (s.cpu.other > 25)
      notes.push(
        `${s.strategy}: the rest of the machine used ${num(s.cpu.other, 0)}% of a core while the clients moved (other work on it, or the killed node's teardown in a short window): its times are inflated by that.`,
      );
    if (s.nodeErrors.length > 0)
      notes.push(`${s.strategy}: ${s.nodeErrors.length} error lines in the nodes' logs (see the JSON).`);
  }

  const svg = barChart({
    title: `SIGKILL of a node holding ${CLIENTS} clients: time until X% of them resumed`,
    unit: "ms",
    series: summaries.map((s) => s.strategy),
    groups: (
      [
        ["first", "first"],
        ["50%", "p50"],
        ["90%", "p90"],
        ["99%", "p99"],
        ["all", "all"],
      ] as const
    ).map(([label, k]) => ({ label, values: summaries.map((s) => s.resumeMs[k] ?? null) })),
    note: `From the signal to each client's first connected event on a survivor; ${PROCS} client processes, 3 nodes on one SQLite file, ${host.cpus} CPUs.`,
  });
  const chart = writeChart(args.out, "herd", svg);

  const md = [
    "# herd",
    "",
    `Command: \`npx tsx bench/herd.ts${args.quick ? " --quick" : ""}\`  `,
    `Date: ${new Date().toISOString()}  `,
    `Host: node ${host.node}, ${host.platform}, ${host.cpus} CPUs, load ${JSON.stringify(host.loadavg)}`,
    "",
    `${CLIENTS} clients per strategy in ${PROCS} child processes, all on ${VICTIM} of three \`lifeline node\` processes sharing one SQLite file (Lifeline's given only ${VICTIM}'s address, learning the others from TOPOLOGY; classic given ${VICTIM}, n2, n3 in that order, as the seed was), each sending ${RATE} message/s and checking the replies; after ${WARMUP / 1000} s, SIGKILL of ${VICTIM}. One phase per strategy, each on a fresh cluster. Times from the signal to each client's first \`connected\` on a survivor (first / 50% / 90% / 99% / all clients); \`settled\`: the last \`connected\` of any client (clients moved again included); n2 / n3: where they first landed; \`max share\`: the larger of the two; attempts: connect attempts of its transport until then; \`thrown off\`: clients disconnected by a survivor afterwards.`,
    "",
    t1,
    "",
    "`held by the failover`: messages sent before the client resumed and answered after it lost its node, with how long each waited. `lost`: sent and never answered, or answered without an entry in the store. `duplicated`: replies that were not their message, plus messages committed twice (counted in the store after the nodes stopped). `sessions lost`: session-lost events, connects that did not resume, and sessions whose last processed message in the store is not the client's last. CPU: % of one core from the kill until every client resumed — the two surviving nodes together, the client processes together, and the rest of the machine (this process excluded; the killed node's teardown and other work on the machine: anything well above 0 means the machine was not quiet). `client loop lag`: the worst event-loop delay of a client process during the phase: how late a client may have seen an event.",
    "",
    t2,
    "",
    ...(notes.length ? [...notes.map((n) => `- ${n}`), ""] : []),
    "![time until X% resumed](herd.svg)",
  ].join("\n");
  console.log(t1);
  console.log("");
  console.log(t2);
  const written = writeResults(
    args.out,
    "herd",
    {
      host,
      clients: CLIENTS,
      procs: PROCS,
      rate: RATE,
      warmupMs: WARMUP,
      settleMs: SETTLE,
      victim: VICTIM,
      phases: summaries,
      pids,
      dir,
      took: Date.now() - started,
    },
    md,
  );
  console.log(`results: ${[...written, chart].join(", ")}`);
}

main()
  .catch((err: unknown) => {
    if (stopping) return; // interrupted: the signal handler cleans up and sets the status
    progress.clear();
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    if (!stopping) await cleanup();
  });
