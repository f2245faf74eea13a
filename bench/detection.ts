/**
 * heartbeat-detection: how fast does the health engine (heartbeat probe, default settings)
 * notice that a Lifeline node has failed — and does it leave a healthy node alone?
 *
 *   npx tsx bench/heartbeat-detection.ts [--trials N] [--quick] [--faults kill,stop,drop]
 *                                        [--parallel P] [--out DIR] [--run-id ID]
 *
 * Every trial starts a fresh `lifeline node` child (memory store, echo app) and has a
 * monitor watch it with `lifeline://127.0.0.1:PORT` — the heartbeat probe with its defaults
 * (heartbeat 500 ms, suspect at phi 2, down at phi 8) in the default `lan` profile. Once the
 * node is healthy and a few heartbeats have shaped the detector (2–2.5 s, a random phase
 * against the heartbeat), the fault is injected and the times from the fault to the
 * `suspect` and `down` transitions are recorded. Faults:
 *
 * - `kill`: SIGKILL. The connection breaks and the reconnect is refused: down at once
 *   (kind refused), no suspicion. Target: median under 50 ms.
 * - `stop`: SIGSTOP (the kernel still accepts connections for the frozen process): caught
 *   by the heartbeats' silence. SIGCONT and SIGKILL afterwards. Target: median under 2 s.
 * - `drop`: an iptables DROP of every packet to the node's port, inside a network namespace
 *   this benchmark creates, where the node and its monitor both run (loopback traffic only
 *   passes the namespace's own INPUT chain). Needs root; skipped with the reason otherwise.
 *   Target: median under 2 s.
 *
 * The monitors are `bench/lib/heartbeat-watcher.ts` children — one HealthEngine each, built
 * as `lifeline monitor` builds it, to which targets are added and removed as by a reload:
 * one on the host (kill, stop) and one inside the namespace (drop). Separate processes keep
 * the monitors' timing independent of this process's own work; transition times are the
 * engine's (Date.now() at the transition), fault times this process's Date.now() just before
 * the signal or the iptables command, on the same host clock.
 *
 * For the whole run each monitor also watches a healthy node of its own (on the host, and in
 * the namespace): it must get no `down` verdict; its `suspect` count is reported.
 *
 * Trials of the three faults are interleaved and run P at a time (default 3). Defaults:
 * N=20 trials per fault; `--quick`: N=3. Prints Markdown tables on stdout and writes
 * DIR/heartbeat-detection.json and .md (DIR: bench/results).
 */
import { randomUUID } from "node:crypto";
import os from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { blackhole, type Undo } from "../test/fault/iptables.ts";
import {
  canUseNamespaces,
  cleanupLeftovers,
  createNamespace,
  listNamespaces,
  type Namespace,
} from "../test/fault/netns.ts";
import {
  killAllSync,
  type NodeChild,
  pgrep,
  repoRoot,
  runMarker,
  spawnNode,
  stillRunning,
  stopAll,
  stopChild,
} from "./lib/children.ts";
import { machineCpuPercent, readMachineCpu } from "./lib/proc.ts";
import { Progress } from "./lib/progress.ts";
import { hostInfo, markdownTable, num, writeResults } from "./lib/report.ts";
import { type Distribution, distribution } from "./lib/stats.ts";

const NAME = "heartbeat-detection";
const BIN = join(repoRoot, "bin", "lifeline.js");
const WATCHER = join(repoRoot, "bench", "lib", "heartbeat-watcher.ts");
/** Namespaces of this benchmark: `llhb-PID-N` (cleanupLeftovers knows them by the dead pid). */
const NS_PREFIX = "llhb-";

const FAULTS = ["kill", "stop", "drop"] as const;
type Fault = (typeof FAULTS)[number];

const FAULT_TITLES: Record<Fault, string> = {
  kill: "SIGKILL of the node",
  stop: "SIGSTOP of the node (frozen process)",
  drop: "iptables DROP of the node's port (in a network namespace)",
};
/** The target for the median time to `down`, ms. */
const TARGET_MS: Record<Fault, number> = { kill: 50, stop: 2000, drop: 2000 };

/** Time a monitor gets to see a new node healthy. */
const HEALTHY_WITHIN = 20_000;
/** Time a fault gets to be detected before the trial counts as missed. */
const DOWN_WITHIN = 20_000;
/** Settling time after `healthy`, before the fault: a few heartbeats for the detector, plus a
 *  random phase against the 500 ms heartbeat. */
const SETTLE_MS = 2000;
const SETTLE_JITTER_MS = 500;

const USAGE = `usage: npx tsx bench/${NAME}.ts [options]
  --trials N      trials per fault (default 20; --quick 3)
  --quick         3 trials per fault: a smoke run (an explicit --trials still wins)
  --faults LIST   comma-separated subset of: ${FAULTS.join(", ")}
  --parallel P    trials running at once (default 3)
  --out DIR       results directory (default bench/results)
  --run-id ID     tag for this run's child processes (default: random)`;

class UsageError extends Error {}

interface Options {
  trials: number;
  quick: boolean;
  faults: Fault[];
  parallel: number;
  out: string;
  runId: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      trials: { type: "string" },
      quick: { type: "boolean", default: false },
      faults: { type: "string" },
      parallel: { type: "string" },
      out: { type: "string" },
      "run-id": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name: string, v: string | undefined, fallback: number, min = 1): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}`);
    return n;
  };
  let faults: Fault[] = [...FAULTS];
  if (values.faults !== undefined) {
    const ids = values.faults.split(",").map((s) => s.trim());
    const unknown = ids.filter((id) => !(FAULTS as readonly string[]).includes(id));
    if (unknown.length > 0 || ids.length === 0)
      throw new UsageError(`--faults: unknown ${unknown.join(", ")} (known: ${FAULTS.join(", ")})`);
    faults = FAULTS.filter((f) => ids.includes(f));
  }
  const quick = values.quick === true;
  return {
    trials: int("trials", values.trials, quick ? 3 : 20),
    quick,
    faults,
    parallel: int("parallel", values.parallel, 3),
    out: resolve(values.out ?? join(repoRoot, "bench", "results")),
    runId: values["run-id"] ?? randomUUID().slice(0, 8),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("LIFELINE_")) env[k] = v;
  return env;
}

/** Rejects if `child` exits before `p` settles, or after `ms`. */
function guard<T>(p: Promise<T>, child: NodeChild, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    child.exited.then((code) => {
      throw new Error(`${child.name} exited (${code}) before ${what}:\n${child.stderrTail.join("\n")}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${child.name}: no ${what} within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const allPids: number[] = [];
const progress = new Progress();
let interrupted = false;

class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

// ---------------------------------------------------------------------------------------
// Monitors

/** A `state` line of the watcher: one transition of one target. */
interface StateLine {
  id: string;
  from: string;
  to: string;
  /** Wall-clock ms of the transition (the engine's Date.now()). */
  at: number;
  kind?: string;
  errno?: string;
  reason: string;
}

interface UnwatchedLine {
  id: string;
  results: number;
  passes: number;
  fails: number;
  maxGapMs: number;
  lastPassAt: number | null;
  watchedMs: number;
}

/** A heartbeat-watcher child: add and remove targets, follow their transitions. */
class Watcher {
  readonly child: NodeChild;
  readonly states: StateLine[] = [];
  readonly ready: Promise<void>;
  private readonly listeners = new Set<() => void>();
  private readonly pendingUnwatch = new Map<string, (u: UnwatchedLine) => void>();
  maxLag = 0;

  constructor(
    readonly where: string,
    runId: string,
    ns: Namespace | undefined,
  ) {
    let onReady: () => void = () => {};
    this.ready = new Promise((r) => {
      onReady = r;
    });
    this.child = spawnNode(`monitor (${where})`, WATCHER, [runMarker(runId)], {
      env: childEnv(),
      ...(ns ? { wrap: ["ip", "netns", "exec", ns.name] } : {}),
      onLine: (msg) => {
        if (msg.type === "ready") onReady();
        else if (msg.type === "state") {
          this.states.push(msg as unknown as StateLine);
          for (const l of [...this.listeners]) l();
        } else if (msg.type === "unwatched") {
          const u = msg as unknown as UnwatchedLine;
          this.pendingUnwatch.get(u.id)?.(u);
          this.pendingUnwatch.delete(u.id);
        } else if (msg.type === "tick") this.maxLag = Math.max(this.maxLag, Number(msg.lag) || 0);
        else if (msg.type === "error") progress.log(`monitor (${where}): ${String(msg.message)}`);
      },
    });
    allPids.push(this.child.pid);
    this.ready = guard(this.ready, this.child, 60_000, "ready");
  }

  private send(cmd: Record<string, unknown>): void {
    this.child.child.stdin?.write(`${JSON.stringify(cmd)}\n`);
  }

  watch(id: string, address: string): void {
    this.send({ cmd: "watch", id, address });
  }

  unwatch(id: string): Promise<UnwatchedLine> {
    const p = new Promise<UnwatchedLine>((r) => this.pendingUnwatch.set(id, r));
    this.send({ cmd: "unwatch", id });
    return guard(p, this.child, 10_000, `the end of watching ${id}`);
  }

  /** Index of the next transition: wait for what happens from now on. */
  mark(): number {
    return this.states.length;
  }

  /** Transitions of `id`, from index `since` on. */
  of(id: string, since = 0): StateLine[] {
    return this.states.slice(since).filter((s) => s.id === id);
  }

  /** The first transition of `id` to `to` from index `since` on; undefined after `ms`. */
  waitFor(id: string, to: string, since: number, ms: number): Promise<StateLine | undefined> {
    return new Promise((resolvePromise, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        if (interrupted) return finish(() => reject(new Interrupted()));
        const hit = this.of(id, since).find((s) => s.to === to);
        if (hit) finish(() => resolvePromise(hit));
      };
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      timer = setTimeout(() => finish(() => resolvePromise(undefined)), ms);
      this.listeners.add(check);
      void this.child.exited.then(() =>
        finish(() =>
          reject(new Error(`${this.child.name} exited while waiting:\n${this.child.stderrTail.join("\n")}`)),
        ),
      );
      check();
    });
  }
}

// ---------------------------------------------------------------------------------------
// Nodes

interface RunningNode {
  child: NodeChild;
  port: number;
}

/** Starts `lifeline node` (memory store, echo app) on port 0, on the host or in `ns`. */
async function startNode(label: string, runId: string, ns: Namespace | undefined): Promise<RunningNode> {
  let gotPort: (port: number) => void = () => {};
  const portP = new Promise<number>((r) => {
    gotPort = r;
  });
  const child = spawnNode(
    `node ${label}`,
    BIN,
    [
      "node",
      "--id",
      `${runId}-${label}`,
      "--port",
      "0",
      "--store",
      "memory",
      "--app",
      "echo",
      "--log-level",
      "warn",
    ],
    {
      env: childEnv(),
      nodeArgs: [], // bin/lifeline.js registers tsx itself
      ...(ns ? { wrap: ["ip", "netns", "exec", ns.name] } : {}),
      onLine: (msg) => {
        if (msg.type === "listening") gotPort(Number(msg.port));
      },
    },
  );
  allPids.push(child.pid);
  const port = await guard(portP, child, 60_000, "its listening line");
  return { child, port };
}

/** SIGKILL (after SIGCONT, in case it is stopped); resolves once it has exited. */
async function killNode(n: RunningNode): Promise<void> {
  for (const sig of ["SIGCONT", "SIGKILL"] as const) {
    try {
      process.kill(n.child.pid, sig);
    } catch {
      // gone already
    }
  }
  await stopChild(n.child, "SIGKILL", 5000);
}

// ---------------------------------------------------------------------------------------
// Trials

interface Trial {
  fault: Fault;
  trial: number;
  nodePid: number;
  port: number;
  /** Wall ms: just before the signal or the iptables command. */
  faultAt: number;
  /** drop: how long the iptables command took, ms (the rule is in place at the latest then). */
  ruleMs?: number;
  settleMs: number;
  /** ms from the fault to the first `suspect`; null when there was none (kill: conclusive). */
  suspectMs: number | null;
  /** The `suspect` transition's error kind and reason. */
  suspectKind: string | null;
  suspectReason: string | null;
  /** ms from the fault to `down`; null when it did not come within DOWN_WITHIN. */
  downMs: number | null;
  downKind: string | null;
  downReason: string | null;
  /** The states after the fault, in order. */
  sequence: string[];
  /** Transitions between `healthy` and the fault (a false alarm before the fault). */
  beforeFault: string[];
  /** ms from the fault to the last heartbeat the monitor received (negative: before the
   *  fault). Silence is judged from that heartbeat on. */
  lastHeartbeatMs: number | null;
  /** kill: ms from the signal to the node's exit as this process saw it (its sockets are
   *  closed by the kernel then, not before). */
  exitMs?: number;
  /** Results the monitor counted for the node while it watched it. */
  results: number;
  fails: number;
}

interface Context {
  opts: Options;
  host: Watcher;
  nsWatcher: Watcher | undefined;
  ns: Namespace | undefined;
  done: Record<Fault, number>;
  active: Map<string, string>;
}

async function runTrial(fault: Fault, index: number, ctx: Context): Promise<Trial> {
  if (interrupted) throw new Interrupted();
  const id = `${fault}-${index}`;
  const ns = fault === "drop" ? ctx.ns : undefined;
  const watcher = fault === "drop" ? ctx.nsWatcher! : ctx.host;
  const setActive = (what: string) => ctx.active.set(id, what);
  setActive("starting");
  const node = await startNode(id, ctx.opts.runId, ns);
  let undo: Undo | undefined;
  try {
    const since = watcher.mark();
    watcher.watch(id, `127.0.0.1:${node.port}`);
    setActive("connecting");
    const healthy = await watcher.waitFor(id, "healthy", since, HEALTHY_WITHIN);
    if (!healthy)
      throw new Error(
        `${id}: not healthy within ${HEALTHY_WITHIN / 1000} s: ${JSON.stringify(watcher.of(id))}`,
      );
    const afterHealthy = watcher.states.indexOf(healthy) + 1;
    setActive("settling");
    const settleMs = SETTLE_MS + Math.random() * SETTLE_JITTER_MS;
    await sleep(settleMs);
    if (interrupted) throw new Interrupted();

    setActive("fault");
    const mark = watcher.mark();
    const beforeFault = watcher.of(id, afterHealthy).map((s) => `${s.from}→${s.to}`);
    let faultAt: number;
    let ruleMs: number | undefined;
    let exitMs: number | undefined;
    if (fault === "drop") {
      faultAt = Date.now();
      undo = await blackhole(ns!, node.port);
      ruleMs = Date.now() - faultAt;
    } else {
      node.child.child.once("exit", () => {
        exitMs = Date.now() - faultAt;
      });
      faultAt = Date.now();
      process.kill(node.child.pid, fault === "kill" ? "SIGKILL" : "SIGSTOP");
    }
    const down = await watcher.waitFor(id, "down", mark, DOWN_WITHIN);
    const after = watcher.of(id, mark);
    const suspect = after.find((s) => s.to === "suspect" && (!down || s.at <= down.at));
    setActive("cleaning up");
    const stats = await watcher.unwatch(id);
    const trial: Trial = {
      fault,
      trial: index,
      nodePid: node.child.pid,
      port: node.port,
      faultAt,
      settleMs: Math.round(settleMs),
      suspectMs: suspect ? suspect.at - faultAt : null,
      suspectKind: suspect ? (suspect.kind ?? null) : null,
      suspectReason: suspect?.reason ?? null,
      downMs: down ? down.at - faultAt : null,
      downKind: down?.kind ?? null,
      downReason: down?.reason ?? null,
      sequence: after.map((s) => s.to),
      beforeFault,
      lastHeartbeatMs: stats.lastPassAt === null ? null : stats.lastPassAt - faultAt,
      results: stats.results,
      fails: stats.fails,
    };
    if (ruleMs !== undefined) trial.ruleMs = ruleMs;
    if (fault === "kill" && exitMs !== undefined) trial.exitMs = exitMs;
    return trial;
  } finally {
    await killNode(node);
    await undo?.();
    ctx.active.delete(id);
    ctx.done[fault]++;
  }
}

/** The trials, interleaved by fault (kill-1, stop-1, drop-1, kill-2, ...), P at a time. */
async function runTrials(ctx: Context, faults: Fault[]): Promise<Trial[]> {
  const queue: Array<{ fault: Fault; index: number }> = [];
  for (let i = 1; i <= ctx.opts.trials; i++) for (const f of faults) queue.push({ fault: f, index: i });
  const total = queue.length;
  const results: Trial[] = [];
  const show = () => {
    const counts = faults.map((f) => `${f} ${ctx.done[f]}/${ctx.opts.trials}`).join(" · ");
    const running = [...ctx.active].map(([id, what]) => `${id} ${what}`).join(", ");
    progress.update(`${counts} · ${running}`);
  };
  const ticker = setInterval(show, 250);
  const worker = async (w: number) => {
    // Staggered starts, so that the nodes' start-ups (CPU-heavy) do not all coincide.
    await sleep(w * 1500);
    for (;;) {
      const next = queue.shift();
      if (!next) return;
      const t = await runTrial(next.fault, next.index, ctx);
      results.push(t);
      const d = t.downMs === null ? "no down" : `down ${t.downMs} ms`;
      const s = t.suspectMs === null ? "" : `, suspect ${t.suspectMs} ms`;
      progress.log(
        `[${results.length}/${total}] ${t.fault}-${t.trial}: ${d}${s} (${t.sequence.join(" → ") || "no change"})`,
      );
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(ctx.opts.parallel, total) }, (_, w) => worker(w)));
  } finally {
    clearInterval(ticker);
  }
  return results.sort((a, b) => FAULTS.indexOf(a.fault) - FAULTS.indexOf(b.fault) || a.trial - b.trial);
}

// ---------------------------------------------------------------------------------------
// Report

interface FaultSummary {
  fault: Fault;
  title: string;
  trials: number;
  /** Trials that reached `down` within DOWN_WITHIN. */
  detected: number;
  suspected: number;
  suspect: Distribution;
  down: Distribution;
  downKinds: Record<string, number>;
  targetMs: number;
  met: boolean | null;
  skipped?: string;
  ruleMs?: Distribution;
  /** kill: the node's exit after the signal, as this process saw it. */
  exitMs?: Distribution;
  /** The last heartbeat the monitor received, relative to the fault. */
  lastHeartbeatMs: Distribution;
  /** Silence at `down`: from the last heartbeat to the transition. */
  silenceAtDownMs: Distribution;
}

interface HealthySummary {
  node: string;
  monitor: string;
  watchedS: number;
  heartbeats: number;
  failedResults: number;
  transitions: string[];
  suspect: number;
  down: number;
  otherNotHealthy: number;
  maxGapMs: number;
}

function summarize(fault: Fault, trials: Trial[], skipped: string | undefined): FaultSummary {
  const mine = trials.filter((t) => t.fault === fault);
  const downs = mine.flatMap((t) => (t.downMs === null ? [] : [t.downMs]));
  const suspects = mine.flatMap((t) => (t.suspectMs === null ? [] : [t.suspectMs]));
  const kinds: Record<string, number> = {};
  for (const t of mine) if (t.downKind) kinds[t.downKind] = (kinds[t.downKind] ?? 0) + 1;
  const down = distribution(downs);
  const s: FaultSummary = {
    fault,
    title: FAULT_TITLES[fault],
    trials: mine.length,
    detected: downs.length,
    suspected: suspects.length,
    suspect: distribution(suspects),
    down,
    downKinds: kinds,
    targetMs: TARGET_MS[fault],
    // A trial without a `down` counts as missing the target.
    met: mine.length === 0 ? null : downs.length === mine.length && down.median < TARGET_MS[fault],
    lastHeartbeatMs: distribution(
      mine.flatMap((t) => (t.lastHeartbeatMs === null ? [] : [t.lastHeartbeatMs])),
    ),
    silenceAtDownMs: distribution(
      mine.flatMap((t) =>
        t.lastHeartbeatMs === null || t.downMs === null ? [] : [t.downMs - t.lastHeartbeatMs],
      ),
    ),
  };
  const rules = mine.flatMap((t) => (t.ruleMs === undefined ? [] : [t.ruleMs]));
  if (rules.length > 0) s.ruleMs = distribution(rules);
  const exits = mine.flatMap((t) => (t.exitMs === undefined ? [] : [t.exitMs]));
  if (exits.length > 0) s.exitMs = distribution(exits);
  if (skipped) s.skipped = skipped;
  return s;
}

function faultTable(rows: FaultSummary[]): string {
  return markdownTable(
    [
      "fault",
      "trials",
      "suspect n",
      "suspect min",
      "suspect median",
      "suspect p95",
      "suspect max",
      "down n",
      "down min",
      "down median",
      "down p95",
      "down max",
      "down kind",
      "target (median down)",
      "met",
    ],
    rows.map((r) => {
      const ms = (v: number) => (Number.isFinite(v) ? `${num(v)} ms` : "n/a");
      const kinds =
        Object.entries(r.downKinds)
          .map(([k, n]) => (n === r.detected ? k : `${k} ×${n}`))
          .join(", ") || "n/a";
      return [
        r.fault,
        r.trials,
        r.suspected,
        ms(r.suspect.min),
        ms(r.suspect.median),
        ms(r.suspect.p95),
        ms(r.suspect.max),
        r.detected,
        ms(r.down.min),
        ms(r.down.median),
        ms(r.down.p95),
        ms(r.down.max),
        kinds,
        `< ${r.targetMs} ms`,
        r.skipped ? "skipped" : r.met === null ? "n/a" : r.met ? "yes" : "NO",
      ];
    }),
  );
}

function healthyTable(rows: HealthySummary[]): string {
  return markdownTable(
    [
      "healthy node",
      "monitor",
      "watched",
      "heartbeats",
      "failed results",
      "suspect",
      "down",
      "other not healthy",
      "max heartbeat gap",
    ],
    rows.map((h) => [
      h.node,
      h.monitor,
      `${num(h.watchedS, 1)} s`,
      h.heartbeats,
      h.failedResults,
      h.suspect,
      h.down,
      h.otherNotHealthy,
      `${num(h.maxGapMs)} ms`,
    ]),
  );
}

function notes(faults: FaultSummary[], healthy: HealthySummary[], trials: Trial[]): string[] {
  const out: string[] = [];
  for (const f of faults) {
    if (f.skipped) out.push(`- ${f.fault}: skipped — ${f.skipped}`);
    if (f.trials > f.detected)
      out.push(
        `- ${f.fault}: ${f.trials - f.detected} of ${f.trials} trials reached no \`down\` within ${DOWN_WITHIN / 1000} s`,
      );
    if (f.exitMs)
      out.push(
        `- ${f.fault}: the node process exited ${num(f.exitMs.median)} ms (median; max ${num(f.exitMs.max)} ms) ` +
          "after SIGKILL, as seen here; the kernel closes its connections only then",
      );
    if (f.fault !== "kill" && f.silenceAtDownMs.n > 0)
      out.push(
        `- ${f.fault}: the last heartbeat arrived ${num(f.lastHeartbeatMs.median)} ms after the fault (median; ` +
          `min ${num(f.lastHeartbeatMs.min)}, max ${num(f.lastHeartbeatMs.max)}; negative = before); \`down\` came ` +
          `${num(f.silenceAtDownMs.median)} ms after it (median silence at down)`,
      );
    if (f.ruleMs)
      out.push(
        `- ${f.fault}: the iptables command took ${num(f.ruleMs.median)} ms (median; max ${num(f.ruleMs.max)} ms); ` +
          "times are counted from its start",
      );
  }
  const killSuspects = trials.filter((t) => t.fault === "kill" && t.suspectMs !== null);
  if (killSuspects.length > 0) {
    const kinds: Record<string, number> = {};
    for (const t of killSuspects) kinds[t.suspectKind ?? "?"] = (kinds[t.suspectKind ?? "?"] ?? 0) + 1;
    out.push(
      `- kill: ${killSuspects.length} of ${trials.filter((t) => t.fault === "kill").length} trials went through ` +
        `\`suspect\` before \`down\` (first failure: ${Object.entries(kinds)
          .map(([k, n]) => `${k} ×${n}`)
          .join(", ")}; e.g. "${killSuspects[0]!.suspectReason}")`,
    );
  }
  for (const t of trials) {
    if (t.beforeFault.length > 0)
      out.push(`- ${t.fault}-${t.trial}: transitions before the fault: ${t.beforeFault.join(", ")}`);
  }
  for (const h of healthy) {
    if (h.transitions.length > 0)
      out.push(`- healthy node ${h.node}: transitions while watched: ${h.transitions.join(", ")}`);
  }
  return out;
}

function markdown(
  faults: FaultSummary[],
  healthy: HealthySummary[],
  trials: Trial[],
  opts: Options,
  command: string,
  host: Record<string, unknown>,
  elapsedS: number,
  machineCpu: number,
): string {
  const lines = [
    `# ${NAME}`,
    "",
    `Command: \`${command}\`  `,
    `Date: ${new Date().toISOString()}  `,
    `Host: node ${host.node}, ${host.platform}, ${host.cpus} CPUs (${host.cpuModel}), load ${JSON.stringify(host.loadavg)}  `,
    `Run: ${opts.trials} trials per fault, ${opts.parallel} at a time, ${num(elapsedS)} s in all; the machine's CPU ` +
      `use over the run: ${num(machineCpu)} % of ${os.cpus().length * 100} % (all processes)`,
    "",
    faultTable(faults),
    "",
    healthyTable(healthy),
    "",
    "Faults:",
    "",
    ...faults.map((f) => `- \`${f.fault}\`: ${f.title}`),
    "",
    "Each trial: a fresh `lifeline node --store memory --app echo` child, watched with",
    "`lifeline://127.0.0.1:PORT` (heartbeat probe defaults: heartbeat 500 ms, suspect at phi 2, down at",
    "phi 8; `lan` profile) by a monitor process (bench/lib/heartbeat-watcher.ts: one HealthEngine,",
    "targets added and removed as by a reload). The fault comes 2–2.5 s after the node turned healthy (a",
    "random phase against the heartbeat). Times run from this process's Date.now() just before the",
    "signal (or the start of the iptables command) to the engine's time of the transition; `suspect n`",
    "counts the trials that went through `suspect` (a refused reconnect after SIGKILL is conclusive and",
    "normally skips it). Silence is judged from the last heartbeat received: after SIGSTOP that is the",
    "one before the fault; the DROP rule drops only packets to the node's port, so the node's next",
    "heartbeat still arrives (its acknowledgement is what is lost) and the silence starts with it. The",
    "healthy nodes were watched for the whole run by the same monitors; `max heartbeat gap` is the",
    "longest time between two heartbeats their monitor received.",
  ];
  const n = notes(faults, healthy, trials);
  if (n.length > 0) lines.push("", "Notes:", "", ...n);
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------
// Main

let namespace: Namespace | undefined;

async function cleanup(): Promise<void> {
  // Trial nodes may be stopped (SIGSTOP): SIGCONT first, so that SIGTERM can act.
  for (const pid of stillRunning(allPids)) {
    try {
      process.kill(pid, "SIGCONT");
    } catch {
      // gone
    }
  }
  await stopAll(3000);
  await namespace?.destroy();
}

/** Children of this run still running: by pid, by the run's marker and by node id. */
function leftovers(runId: string): number[] {
  return [...new Set([...stillRunning(allPids), ...pgrep(runMarker(runId)), ...pgrep(`--id ${runId}-`)])];
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const command = `npx tsx bench/${NAME}.ts ${process.argv.slice(2).join(" ")}`.trim();
  const host = hostInfo();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const machine0 = readMachineCpu();

  let dropSkipped: string | undefined;
  if (opts.faults.includes("drop")) {
    dropSkipped = canUseNamespaces();
    if (dropSkipped) progress.log(`${NAME}: skipping the drop fault: ${dropSkipped}`);
  }
  const faults = opts.faults.filter((f) => f !== "drop" || dropSkipped === undefined);
  progress.log(
    `${NAME}: ${opts.trials} trials per fault (${faults.join(", ")}), ${opts.parallel} at a time (run ${opts.runId})`,
  );

  if (faults.includes("drop")) {
    const removed = await cleanupLeftovers(NS_PREFIX);
    if (removed.length > 0) progress.log(`removed namespaces of an earlier run: ${removed.join(", ")}`);
    namespace = await createNamespace(NS_PREFIX);
  }

  progress.update("starting the monitors and the healthy nodes…");
  const hostWatcher = new Watcher("host", opts.runId, undefined);
  const nsWatcher = namespace ? new Watcher(`namespace ${namespace.name}`, opts.runId, namespace) : undefined;
  await Promise.all([hostWatcher.ready, nsWatcher?.ready]);

  const healthyNodes: Array<{ label: string; watcher: Watcher; node: RunningNode; startedAt: number }> = [];
  const startHealthy = async (label: string, watcher: Watcher, ns: Namespace | undefined) => {
    const node = await startNode(label, opts.runId, ns);
    const since = watcher.mark();
    watcher.watch(label, `127.0.0.1:${node.port}`);
    const ok = await watcher.waitFor(label, "healthy", since, HEALTHY_WITHIN);
    if (!ok) throw new Error(`${label}: not healthy within ${HEALTHY_WITHIN / 1000} s`);
    healthyNodes.push({ label, watcher, node, startedAt: watcher.states.indexOf(ok) + 1 });
  };
  await startHealthy("healthy-host", hostWatcher, undefined);
  if (nsWatcher) await startHealthy("healthy-ns", nsWatcher, namespace);

  const ctx: Context = {
    opts,
    host: hostWatcher,
    nsWatcher,
    ns: namespace,
    done: { kill: 0, stop: 0, drop: 0 },
    active: new Map(),
  };
  const trials = await runTrials(ctx, faults);

  progress.update("stopping…");
  const healthy: HealthySummary[] = [];
  for (const h of healthyNodes) {
    const stats = await h.watcher.unwatch(h.label);
    const after = h.watcher.of(h.label, h.startedAt);
    healthy.push({
      node: h.label,
      monitor: h.watcher.where.startsWith("namespace") ? "namespace" : "host",
      watchedS: stats.watchedMs / 1000,
      heartbeats: stats.passes,
      failedResults: stats.fails,
      transitions: after.map((s) => `${s.from}→${s.to} (${s.reason})`),
      suspect: after.filter((s) => s.to === "suspect").length,
      down: after.filter((s) => s.to === "down").length,
      otherNotHealthy: after.filter((s) => !["healthy", "suspect", "down"].includes(s.to)).length,
      maxGapMs: stats.maxGapMs,
    });
    await stopChild(h.node.child, "SIGTERM", 5000);
  }
  const nodeExits = await Promise.all(healthyNodes.map((h) => h.node.child.exited));
  const monitorLag = { host: hostWatcher.maxLag, namespace: nsWatcher?.maxLag ?? null };
  const namespaceName = namespace?.name ?? null;
  await cleanup();
  progress.clear();
  const elapsedS = (performance.now() - t0) / 1000;
  const machineCpu = machineCpuPercent(machine0, readMachineCpu(), os.cpus().length);

  const summaries = opts.faults.map((f) => summarize(f, trials, f === "drop" ? dropSkipped : undefined));
  const left = leftovers(opts.runId);
  const leftNamespaces = namespaceName && listNamespaces().includes(namespaceName) ? [namespaceName] : [];
  const md = markdown(summaries, healthy, trials, opts, command, host, elapsedS, machineCpu);
  const json = {
    bench: NAME,
    command,
    startedAt,
    finishedAt: new Date().toISOString(),
    elapsedSeconds: elapsedS,
    machineCpuPercent: machineCpu,
    host,
    loadavgAtEnd: hostInfo().loadavg,
    settings: {
      trials: opts.trials,
      quick: opts.quick,
      parallel: opts.parallel,
      faults: opts.faults,
      runId: opts.runId,
      probe: "lifeline://127.0.0.1:PORT (heartbeat 500 ms, suspectPhi 2, downPhi 8: the defaults)",
      settleMs: [SETTLE_MS, SETTLE_MS + SETTLE_JITTER_MS],
      downWithinMs: DOWN_WITHIN,
    },
    namespace: namespaceName,
    dropSkipped: dropSkipped ?? null,
    faults: summaries,
    healthy,
    healthyNodeExits: nodeExits,
    monitorMaxLagMs: monitorLag,
    trials,
    childPids: allPids,
    leftoverPids: left,
    leftoverNamespaces: leftNamespaces,
  };
  const paths = writeResults(opts.out, NAME, json, md);
  process.stdout.write(`${faultTable(summaries)}\n\n${healthyTable(healthy)}\n`);
  const n = notes(summaries, healthy, trials);
  if (n.length > 0) process.stdout.write(`\n${n.join("\n")}\n`);
  progress.log(`results: ${paths.join(", ")}`);
  if (left.length > 0 || leftNamespaces.length > 0) {
    progress.log(
      `error: left behind: processes ${left.join(", ") || "none"}; namespaces ${leftNamespaces.join(", ") || "none"}`,
    );
    return 1;
  }
  return 0;
}

// Every exit path stops the children and removes the namespace: normal end, errors, Ctrl-C,
// SIGTERM; and a SIGKILL to any surviving child when the process exits at all (the fault
// harness deletes its namespaces on exit as well). Each child also exits when its stdin closes.
process.on("exit", killAllSync);
let signals = 0;
const onSignal = (signal: NodeJS.Signals) => {
  interrupted = true;
  if (++signals > 1) {
    killAllSync();
    process.exit(130);
  }
  progress.log(`${NAME}: ${signal}, stopping child processes…`);
  void cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
process.on("SIGHUP", onSignal);

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err: unknown) => {
    if (!interrupted) {
      progress.log(`${NAME}: ${err instanceof Error ? err.message : String(err)}`);
      await cleanup();
      process.exit(1);
    }
  },
);
