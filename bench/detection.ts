/**
 * detection: how fast does the health engine notice that a Lifeline node has failed — with
 * the heartbeat probe, with a plain tcp check, and as the seed did (`classic`) — and does it
 * leave a healthy node alone?
 *
 *   npx tsx bench/detection.ts [--trials N] [--quick] [--faults kill,stop,drop,slow-connect]
 *                              [--parallel P] [--slow-window MS] [--out DIR] [--run-id ID]
 *
 * Every trial starts a fresh `lifeline node` child (memory store, echo app) and has three
 * monitors watch it at the same time, so that one fault is measured by all three under the
 * same conditions (the ratios hold on a noisy machine):
 *
 * - `lan + heartbeat`: `lifeline://127.0.0.1:PORT`, the heartbeat probe with its defaults
 *   (heartbeat 500 ms, suspect at phi 2, down at phi 8) in the default `lan` profile;
 * - `lan + tcp`: `tcp://127.0.0.1:PORT`, a connect check with the `lan` defaults (interval
 *   2 s, fast interval 500 ms, adaptive timeout 1–8 s with patience, fall 3);
 * - `classic`: the same tcp check under `--profile classic`, the seed's monitor (fixed 2 s
 *   timeout, 3 s interval, fall 1, sequential loop) — with an engine per node, so that one
 *   hanging node does not delay the checks of the others (as the seed's loop would).
 *
 * Once all three see the node healthy, and 2–5 s later (a random phase against the
 * heartbeat, the 2 s and the 3 s check intervals), the fault is injected and the times from
 * the fault to each monitor's `suspect` and `down` transitions are recorded. Faults:
 *
 * - `kill`: SIGKILL. Connections break, connects are refused.
 * - `stop`: SIGSTOP (the kernel still completes handshakes for the frozen process): only
 *   silence on an established connection shows it. SIGCONT and SIGKILL afterwards.
 * - `drop`: an iptables DROP of every packet to the node's port (a blackhole).
 * - `slow-connect`: an iptables DROP of the SYNs to the node's port for a window (default
 *   6 s), then removed: connects started in it hang and complete at the first SYN
 *   retransmission after it (slow to accept, not dead), while established connections —
 *   the heartbeat probe's — keep working.
 *
 * The nodes and monitors all run inside a network namespace this benchmark creates (the
 * iptables rules apply to its loopback only; SYN retransmissions 1 s apart, as the fault
 * harness pins them). Without root (or `ip`/`iptables`) everything runs on the host and
 * `drop` and `slow-connect` are skipped, with the reason.
 *
 * The monitors are `bench/lib/detection-watcher.ts` children — one per variant, each a
 * HealthEngine built as `lifeline monitor` builds it, to which targets are added and removed
 * as by a reload. Separate processes keep the monitors' timing independent of this process's
 * work and of each other; transition times are the engine's (Date.now() at the transition),
 * fault times this process's Date.now() just before the signal or the iptables command, on
 * the same host clock.
 *
 * For the whole run the three monitors also watch one healthy node: it must get no `down`
 * verdict; `suspect` and other transitions are reported.
 *
 * Trials of the faults are interleaved and run P at a time (default 8). Defaults: N=20
 * trials per fault; `--quick`: N=3. Prints Markdown tables on stdout and writes
 * DIR/detection.json, .md and .svg (median time to `down`, fault × variant; DIR:
 * bench/results).
 */
import os from "node:os";
import { join } from "node:path";
import { addRule, blackhole, type Undo } from "../test/fault/iptables.ts";
import { canUseNamespaces, type Namespace } from "../test/fault/netns.ts";
import { type CommonOptions, numberArg, parseBenchArgs, pickList } from "./lib/args.ts";
import {
  guard,
  Interrupted,
  interrupted,
  leftBehind,
  leftovers,
  type RunningNode,
  repoRoot,
  runBenchmark,
  runMarker,
  startNode,
  stillRunning,
  stopAll,
  stopChild,
} from "./lib/children.ts";
import { benchNamespace, namespaceLeft, whereRun } from "./lib/namespace.ts";
import { measureRun, type RunMeasured } from "./lib/proc.ts";
import { Progress } from "./lib/progress.ts";
import type { RunStart } from "./lib/report.ts";
import { type Cell, markdownHeader, markdownTable, num, runFields, writeResults } from "./lib/report.ts";
import { type Distribution, distribution } from "./lib/stats.ts";
import { barChart, writeChart } from "./lib/svg-chart.ts";
import { MONITOR_VARIANTS, type MonitorVariant, type StateLine, WatcherProcess } from "./lib/watcher.ts";

const NAME = "detection";
const WATCHER = join(repoRoot, "bench", "lib", "detection-watcher.ts");
/** Namespaces of this benchmark: `lldt-PID-N` (cleanupLeftovers knows them by the dead pid). */
const NS_PREFIX = "lldt-";

const FAULTS = ["kill", "stop", "drop", "slow-connect"] as const;
type Fault = (typeof FAULTS)[number];
/** Faults that need iptables in a namespace. */
const NETWORK_FAULTS: readonly Fault[] = ["drop", "slow-connect"];

const VARIANTS = ["heartbeat", "tcp", "classic"] as const;
type Variant = (typeof VARIANTS)[number];

const VARIANT_INFO: Record<Variant, MonitorVariant> = MONITOR_VARIANTS;

/** Each variant, as the results describe it. */
const DESCRIBE: Record<Variant, string> = {
  heartbeat: "lifeline://127.0.0.1:PORT (heartbeat 500 ms, suspectPhi 2, downPhi 8: the defaults), lan",
  tcp: "tcp://127.0.0.1:PORT, lan defaults (interval 2 s, fastInterval 500 ms, timeout 1–8 s adaptive, patience, fall 3)",
  classic:
    "tcp://127.0.0.1:PORT, --profile classic (fixed 2 s timeout, interval 3 s, fall 1, sequential), an engine per node",
};

const FAULT_TITLES: Record<Fault, string> = {
  kill: "SIGKILL of the node",
  stop: "SIGSTOP of the node (frozen process)",
  drop: "iptables DROP of every packet to the node's port (blackhole)",
  "slow-connect":
    "iptables DROP of the SYNs to the node's port for a window (new connects hang, established ones work)",
};
/** The heartbeat probe's targets for its median time to `down`, ms. */
const HEARTBEAT_TARGET_MS: Partial<Record<Fault, number>> = { kill: 50, stop: 2000, drop: 2000 };

/** Time the monitors get to see a new node healthy. */
const HEALTHY_WITHIN = 20_000;
/** How long after the fault the monitors are watched (less when all three are down sooner).
 *  Long enough for every variant that can see the fault: lan + tcp convicts a blackhole
 *  only when its patient attempt ends, `timeout.max` (8 s) after the first check after the
 *  fault (which comes within the 2 s interval). */
const OBSERVE_MS: Record<Exclude<Fault, "slow-connect">, number> = { kill: 8000, stop: 10_000, drop: 14_000 };
/** slow-connect is watched for its window plus this: the connects it held complete at the
 *  first SYN retransmission after it, and lan + tcp's patient attempt is judged then. */
const SLOW_AFTER_WINDOW_MS = 6000;
/** Settling time after all three see the node healthy, before the fault: a few heartbeats
 *  for the detector, then a random phase against the heartbeat (500 ms) and the check
 *  intervals (2 s lan, 3 s classic). */
const SETTLE_MS = 2000;
const SETTLE_JITTER_MS = 3000;

const USAGE = `usage: npx tsx bench/${NAME}.ts [options]
  --trials N         trials per fault (default 20; --quick 3)
  --quick            3 trials per fault: a smoke run (an explicit --trials still wins)
  --faults LIST      comma-separated subset of: ${FAULTS.join(", ")}
  --parallel P       trials running at once (default 8)
  --slow-window MS   how long slow-connect drops SYNs (default 6000)
  --out DIR          results directory (default bench/results)
  --run-id ID        tag for this run's child processes (default: random)`;

interface Options extends CommonOptions {
  trials: number;
  faults: Fault[];
  parallel: number;
  slowWindowMs: number;
}

function parseOptions(argv: string[]): Options {
  const { values, common } = parseBenchArgs(argv, USAGE, ["trials", "faults", "parallel", "slow-window"]);
  return {
    ...common,
    trials: numberArg("trials", values.trials, common.quick ? 3 : 20),
    faults: values.faults === undefined ? [...FAULTS] : pickList("faults", values.faults, FAULTS),
    parallel: numberArg("parallel", values.parallel, 8),
    slowWindowMs: numberArg("slow-window", values["slow-window"], 6000, { min: 100 }),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

const allPids: number[] = [];
const progress = new Progress();

// ---------------------------------------------------------------------------------------
// Monitors

interface UnwatchedLine {
  id: string;
  results: number;
  passes: number;
  fails: number;
  maxGapMs: number;
  lastPassAt: number | null;
  watchedMs: number;
}

/** A detection-watcher child (one variant): add and remove targets, follow their transitions. */
class Watcher extends WatcherProcess {
  private readonly listeners = new Set<() => void>();
  private readonly pendingUnwatch = new Map<string, (u: UnwatchedLine) => void>();
  maxLag = 0;

  constructor(
    readonly variant: Variant,
    runId: string,
    ns: Namespace | undefined,
  ) {
    const info = VARIANT_INFO[variant];
    super({
      name: `monitor (${info.label})`,
      script: WATCHER,
      variant: info,
      runId,
      ns,
      pids: allPids,
      log: (line) => progress.log(line),
    });
  }

  protected override onState(): void {
    for (const l of [...this.listeners]) l();
  }

  protected override onMessage(msg: Record<string, unknown>): void {
    if (msg.type === "unwatched") {
      const u = msg as unknown as UnwatchedLine;
      this.pendingUnwatch.get(u.id)?.(u);
      this.pendingUnwatch.delete(u.id);
    } else if (msg.type === "tick") this.maxLag = Math.max(this.maxLag, Number(msg.lag) || 0);
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
        if (interrupted()) return finish(() => reject(new Interrupted()));
        const hit = this.of(id, since).find((s) => s.to === to);
        if (hit) finish(() => resolvePromise(hit));
      };
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      timer = setTimeout(() => finish(() => resolvePromise(undefined)), Math.max(0, ms));
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

/** Starts `lifeline node` (memory store, echo app) on port 0, on the host or in `ns`. */
function startTrialNode(label: string, runId: string, ns: Namespace | undefined): Promise<RunningNode> {
  return startNode({ name: `node ${label}`, id: `${runId}-${label}`, adminOff: true, ns, pids: allPids });
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

/** What one monitor saw of one trial. */
interface Observation {
  /** ms from the fault to the first `suspect` (before `down`, if any); null: none. */
  suspectMs: number | null;
  suspectKind: string | null;
  suspectReason: string | null;
  /** ms from the fault to `down`; null when it did not come while watched. */
  downMs: number | null;
  downKind: string | null;
  downReason: string | null;
  /** The states after the fault, in order. */
  sequence: string[];
  /** Transitions between `healthy` and the fault (a false alarm before the fault). */
  beforeFault: string[];
  /** ms from the fault to the last passing result (heartbeat or connect) the monitor got;
   *  negative: before the fault. */
  lastPassMs: number | null;
  /** Results the monitor counted for the node while it watched it. */
  results: number;
  fails: number;
}

interface Trial {
  fault: Fault;
  trial: number;
  nodePid: number;
  port: number;
  /** Wall ms: just before the signal or the iptables command. */
  faultAt: number;
  /** drop, slow-connect: how long the iptables command took, ms. */
  ruleMs?: number;
  /** slow-connect: ms from the fault to the start of the command that removed the rule. */
  windowMs?: number;
  settleMs: number;
  /** ms the monitors were watched after the fault. */
  observedMs: number;
  /** kill: ms from the signal to the node's exit as this process saw it (its sockets are
   *  closed by the kernel then, not before). */
  exitMs?: number;
  variants: Record<Variant, Observation>;
}

interface Context {
  opts: Options;
  watchers: Record<Variant, Watcher>;
  ns: Namespace | undefined;
  done: Record<Fault, number>;
  active: Map<string, string>;
}

function observeMs(fault: Fault, opts: Options): number {
  return fault === "slow-connect" ? opts.slowWindowMs + SLOW_AFTER_WINDOW_MS : OBSERVE_MS[fault];
}

async function runTrial(fault: Fault, index: number, ctx: Context): Promise<Trial> {
  if (interrupted()) throw new Interrupted();
  const id = `${fault}-${index}`;
  const ws = VARIANTS.map((v) => ctx.watchers[v]);
  const setActive = (what: string) => ctx.active.set(id, what);
  setActive("starting");
  const node = await startTrialNode(id, ctx.opts.runId, ctx.ns);
  let undo: Undo | undefined;
  let windowEnd: Promise<void> | undefined;
  try {
    const since = ws.map((w) => w.mark());
    for (const w of ws) w.watch(id, `127.0.0.1:${node.port}`);
    setActive("connecting");
    const healthy = await Promise.all(ws.map((w, i) => w.waitFor(id, "healthy", since[i]!, HEALTHY_WITHIN)));
    healthy.forEach((h, i) => {
      if (!h)
        throw new Error(
          `${id}: ${ws[i]!.child.name} did not see it healthy within ${HEALTHY_WITHIN / 1000} s: ` +
            JSON.stringify(ws[i]!.of(id, since[i])),
        );
    });
    const afterHealthy = healthy.map((h, i) => ws[i]!.states.indexOf(h!) + 1);
    setActive("settling");
    const settleMs = SETTLE_MS + Math.random() * SETTLE_JITTER_MS;
    await sleep(settleMs);
    if (interrupted()) throw new Interrupted();

    setActive("fault");
    const marks = ws.map((w) => w.mark());
    const beforeFault = ws.map((w, i) => w.of(id, afterHealthy[i]).map((s) => `${s.from}→${s.to}`));
    let faultAt: number;
    let ruleMs: number | undefined;
    let windowMs: number | undefined;
    let exitMs: number | undefined;
    if (fault === "drop" || fault === "slow-connect") {
      const ns = ctx.ns!;
      faultAt = Date.now();
      undo =
        fault === "drop"
          ? await blackhole(ns, node.port)
          : await addRule(ns, ["-p", "tcp", "--dport", String(node.port), "--syn", "-j", "DROP"]);
      ruleMs = Date.now() - faultAt;
      if (fault === "slow-connect") {
        const at = faultAt;
        const remove = undo;
        windowEnd = sleep(at + ctx.opts.slowWindowMs - Date.now()).then(async () => {
          windowMs = Date.now() - at;
          await remove();
        });
      }
    } else {
      node.child.child.once("exit", () => {
        exitMs = Date.now() - faultAt;
      });
      faultAt = Date.now();
      process.kill(node.child.pid, fault === "kill" ? "SIGKILL" : "SIGSTOP");
    }
    setActive("watching");
    const deadline = faultAt + observeMs(fault, ctx.opts);
    const downs = await Promise.all(
      ws.map((w, i) => w.waitFor(id, "down", marks[i]!, deadline - Date.now())),
    );
    await windowEnd;
    const observedMs = Date.now() - faultAt;
    setActive("cleaning up");
    const stats = await Promise.all(ws.map((w) => w.unwatch(id)));
    const variants = {} as Record<Variant, Observation>;
    VARIANTS.forEach((v, i) => {
      const down = downs[i];
      const after = ws[i]!.of(id, marks[i]);
      const suspect = after.find((s) => s.to === "suspect" && (!down || s.at <= down.at));
      const st = stats[i]!;
      variants[v] = {
        suspectMs: suspect ? suspect.at - faultAt : null,
        suspectKind: suspect ? (suspect.kind ?? null) : null,
        suspectReason: suspect?.reason ?? null,
        downMs: down ? down.at - faultAt : null,
        downKind: down?.kind ?? null,
        downReason: down?.reason ?? null,
        sequence: after.map((s) => s.to),
        beforeFault: beforeFault[i]!,
        lastPassMs: st.lastPassAt === null ? null : st.lastPassAt - faultAt,
        results: st.results,
        fails: st.fails,
      };
    });
    const trial: Trial = {
      fault,
      trial: index,
      nodePid: node.child.pid,
      port: node.port,
      faultAt,
      settleMs: Math.round(settleMs),
      observedMs,
      variants,
    };
    if (ruleMs !== undefined) trial.ruleMs = ruleMs;
    if (windowMs !== undefined) trial.windowMs = windowMs;
    if (fault === "kill" && exitMs !== undefined) trial.exitMs = exitMs;
    return trial;
  } finally {
    await windowEnd?.catch(() => {});
    await killNode(node);
    await undo?.();
    ctx.active.delete(id);
    ctx.done[fault]++;
  }
}

function short(v: Variant, o: Observation): string {
  const d = o.downMs === null ? "no down" : `down ${o.downMs} ms`;
  const s = o.suspectMs === null ? "" : `, suspect ${o.suspectMs} ms`;
  return `${v} ${d}${s} (${o.sequence.join("→") || "no change"})`;
}

/** The trials, interleaved by fault (kill-1, stop-1, drop-1, slow-connect-1, kill-2, ...),
 *  P at a time. */
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
    await sleep(w * 700);
    for (;;) {
      const next = queue.shift();
      if (!next) return;
      const t = await runTrial(next.fault, next.index, ctx);
      results.push(t);
      progress.log(
        `[${results.length}/${total}] ${t.fault}-${t.trial}: ` +
          VARIANTS.map((v) => short(v, t.variants[v])).join("; "),
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

interface Summary {
  fault: Fault;
  variant: Variant;
  trials: number;
  /** Trials that reached `down` while watched. */
  detected: number;
  suspected: number;
  suspect: Distribution;
  down: Distribution;
  downKinds: Record<string, number>;
  /** Trials without `down`: the states they went through ("none" when none), counted. */
  withoutDown: Record<string, number>;
  skipped?: string;
  /** Heartbeat only: the last heartbeat the monitor received, relative to the fault. */
  lastPassMs?: Distribution;
  /** Heartbeat only: silence at `down`, from the last heartbeat to the transition. */
  silenceAtDownMs?: Distribution;
}

interface FaultFacts {
  fault: Fault;
  title: string;
  trials: number;
  skipped?: string;
  observeMs: number;
  ruleMs?: Distribution;
  windowMs?: Distribution;
  exitMs?: Distribution;
}

interface HealthySummary {
  variant: Variant;
  watchedS: number;
  passes: number;
  failedResults: number;
  transitions: string[];
  suspect: number;
  down: number;
  otherNotHealthy: number;
  maxGapMs: number;
}

const values = (trials: Trial[], f: (t: Trial) => number | null | undefined): number[] =>
  trials.flatMap((t) => {
    const v = f(t);
    return v === null || v === undefined ? [] : [v];
  });

function summarize(fault: Fault, variant: Variant, trials: Trial[], skipped: string | undefined): Summary {
  const mine = trials.filter((t) => t.fault === fault).map((t) => t.variants[variant]);
  const downs = mine.flatMap((o) => (o.downMs === null ? [] : [o.downMs]));
  const suspects = mine.flatMap((o) => (o.suspectMs === null ? [] : [o.suspectMs]));
  const kinds: Record<string, number> = {};
  const withoutDown: Record<string, number> = {};
  for (const o of mine) {
    if (o.downKind) kinds[o.downKind] = (kinds[o.downKind] ?? 0) + 1;
    if (o.downMs === null) {
      const path = o.sequence.filter((s, i) => s !== o.sequence[i - 1]).join("→") || "none";
      withoutDown[path] = (withoutDown[path] ?? 0) + 1;
    }
  }
  const s: Summary = {
    fault,
    variant,
    trials: mine.length,
    detected: downs.length,
    suspected: suspects.length,
    suspect: distribution(suspects),
    down: distribution(downs),
    downKinds: kinds,
    withoutDown,
  };
  if (variant === "heartbeat") {
    s.lastPassMs = distribution(mine.flatMap((o) => (o.lastPassMs === null ? [] : [o.lastPassMs])));
    s.silenceAtDownMs = distribution(
      mine.flatMap((o) => (o.lastPassMs === null || o.downMs === null ? [] : [o.downMs - o.lastPassMs])),
    );
  }
  if (skipped) s.skipped = skipped;
  return s;
}

function faultFacts(fault: Fault, trials: Trial[], opts: Options, skipped: string | undefined): FaultFacts {
  const mine = trials.filter((t) => t.fault === fault);
  const f: FaultFacts = {
    fault,
    title: FAULT_TITLES[fault],
    trials: mine.length,
    observeMs: observeMs(fault, opts),
  };
  const rules = values(mine, (t) => t.ruleMs);
  if (rules.length > 0) f.ruleMs = distribution(rules);
  const windows = values(mine, (t) => t.windowMs);
  if (windows.length > 0) f.windowMs = distribution(windows);
  const exits = values(mine, (t) => t.exitMs);
  if (exits.length > 0) f.exitMs = distribution(exits);
  if (skipped) f.skipped = skipped;
  return f;
}

const ms = (v: number) => (Number.isFinite(v) ? `${num(v)} ms` : "n/a");

const counted = (m: Record<string, number>, all: number): string =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => (n === all ? k : `${k} ×${n}`))
    .join(", ");

/** Median time to `down`, fault × variant. */
function medianTable(rows: Summary[], faults: Fault[]): string {
  return markdownTable(
    ["median down", ...VARIANTS.map((v) => VARIANT_INFO[v].label)],
    faults.map((f) => [
      f,
      ...VARIANTS.map((v): Cell => {
        const r = rows.find((x) => x.fault === f && x.variant === v)!;
        if (r.skipped) return "skipped";
        if (r.detected === 0) return `no down (0/${r.trials})`;
        const m = ms(r.down.median);
        return r.detected === r.trials ? m : `${m} (${r.detected}/${r.trials} down)`;
      }),
    ]),
  );
}

function detailTable(rows: Summary[]): string {
  return markdownTable(
    [
      "fault",
      "variant",
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
      "without down: states seen",
    ],
    rows.map((r) => {
      if (r.skipped) return [r.fault, VARIANT_INFO[r.variant].label, 0, ...Array(11).fill("n/a"), "skipped"];
      return [
        r.fault,
        VARIANT_INFO[r.variant].label,
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
        counted(r.downKinds, r.detected) || "n/a",
        counted(r.withoutDown, r.trials - r.detected) || "n/a",
      ];
    }),
  );
}

function healthyTable(rows: HealthySummary[]): string {
  return markdownTable(
    [
      "healthy node, variant",
      "watched",
      "passing results",
      "failed results",
      "suspect",
      "down",
      "other not healthy",
      "max gap between passes",
    ],
    rows.map((h) => [
      VARIANT_INFO[h.variant].label,
      `${num(h.watchedS, 1)} s`,
      h.passes,
      h.failedResults,
      h.suspect,
      h.down,
      h.otherNotHealthy,
      `${num(h.maxGapMs)} ms`,
    ]),
  );
}

function notes(
  summaries: Summary[],
  facts: FaultFacts[],
  healthy: HealthySummary[],
  trials: Trial[],
  opts: Options,
): string[] {
  const out: string[] = [];
  const get = (f: Fault, v: Variant) => summaries.find((s) => s.fault === f && s.variant === v);
  for (const f of facts) {
    if (f.skipped) {
      out.push(`- ${f.fault}: skipped — ${f.skipped}`);
      continue;
    }
    if (f.trials === 0) continue;
    if (f.exitMs)
      out.push(
        `- ${f.fault}: the node process exited ${num(f.exitMs.median)} ms (median; max ${num(f.exitMs.max)} ms) ` +
          "after SIGKILL, as seen here; the kernel closes its connections only then",
      );
    if (f.ruleMs)
      out.push(
        `- ${f.fault}: the iptables command took ${num(f.ruleMs.median)} ms (median; max ${num(f.ruleMs.max)} ms); ` +
          "times are counted from its start",
      );
    if (f.windowMs)
      out.push(
        `- ${f.fault}: SYNs were dropped for ${num(f.windowMs.median)} ms (median; max ${num(f.windowMs.max)} ms) ` +
          `of the ${num(f.observeMs / 1000)} s watched after the fault`,
      );
    const hb = get(f.fault, "heartbeat");
    const target = HEARTBEAT_TARGET_MS[f.fault];
    if (hb && target !== undefined && hb.trials > 0) {
      const met = hb.detected === hb.trials && hb.down.median < target;
      out.push(
        `- ${f.fault}, lan + heartbeat: target median down < ${target} ms: ${met ? "met" : "NOT met"} ` +
          `(${ms(hb.down.median)}, ${hb.detected}/${hb.trials} down)`,
      );
    }
    if (hb?.silenceAtDownMs && hb.silenceAtDownMs.n > 0 && f.fault !== "kill")
      out.push(
        `- ${f.fault}, lan + heartbeat: the last heartbeat arrived ${num(hb.lastPassMs!.median)} ms after the fault ` +
          `(median; min ${num(hb.lastPassMs!.min)}, max ${num(hb.lastPassMs!.max)}; negative = before); \`down\` came ` +
          `${num(hb.silenceAtDownMs.median)} ms after it (median silence at down)`,
      );
    for (const v of VARIANTS) {
      const s = get(f.fault, v);
      if (!s || s.trials === 0 || s.detected === s.trials) continue;
      out.push(
        `- ${f.fault}, ${VARIANT_INFO[v].label}: ${s.trials - s.detected} of ${s.trials} trials reached no ` +
          `\`down\` in the ${num(f.observeMs / 1000)} s watched (states after the fault: ` +
          `${counted(s.withoutDown, s.trials - s.detected)})`,
      );
    }
  }
  const killHb = trials.filter((t) => t.fault === "kill" && t.variants.heartbeat.suspectMs !== null);
  if (killHb.length > 0) {
    const kinds: Record<string, number> = {};
    for (const t of killHb) {
      const k = t.variants.heartbeat.suspectKind ?? "?";
      kinds[k] = (kinds[k] ?? 0) + 1;
    }
    out.push(
      `- kill, lan + heartbeat: ${killHb.length} of ${trials.filter((t) => t.fault === "kill").length} trials went ` +
        `through \`suspect\` before \`down\` (first failure: ${counted(kinds, -1)}; e.g. ` +
        `"${killHb[0]!.variants.heartbeat.suspectReason}")`,
    );
  }
  for (const t of trials)
    for (const v of VARIANTS)
      if (t.variants[v].beforeFault.length > 0)
        out.push(
          `- ${t.fault}-${t.trial}, ${VARIANT_INFO[v].label}: transitions before the fault: ` +
            t.variants[v].beforeFault.join(", "),
        );
  for (const h of healthy)
    if (h.transitions.length > 0)
      out.push(
        `- healthy node, ${VARIANT_INFO[h.variant].label}: transitions while watched: ${h.transitions.join(", ")}`,
      );
  if (opts.faults.includes("slow-connect") && !facts.find((f) => f.fault === "slow-connect")?.skipped)
    out.push(
      `- slow-connect is slowness, not death: the node serves its established connections throughout and ` +
        `accepts every connect once the ${num(opts.slowWindowMs / 1000, 1)} s window ends. A \`down\` here is a ` +
        "verdict on a slow node; the heartbeat probe's connection predates the window, so it rightly sees nothing",
    );
  return out;
}

function markdown(
  summaries: Summary[],
  facts: FaultFacts[],
  healthy: HealthySummary[],
  trials: Trial[],
  opts: Options,
  run: RunStart,
  meta: RunMeasured & { where: string },
): string {
  const faults = facts.map((f) => f.fault);
  const lines = [
    ...markdownHeader(run, true),
    `Run: ${opts.trials} trials per fault, ${opts.parallel} at a time, ${num(meta.elapsedS)} s in all, in ${meta.where}; ` +
      `the machine's CPU use over the run: ${num(meta.machineCpu)} % of ${os.cpus().length * 100} % (all processes)`,
    "",
    "Median time from the fault to `down` (each trial's fault watched by all three at once):",
    "",
    medianTable(summaries, faults),
    "",
    detailTable(summaries),
    "",
    healthyTable(healthy),
    "",
    "Faults:",
    "",
    ...facts.map((f) => `- \`${f.fault}\`: ${f.title}; watched ${num(f.observeMs / 1000)} s after it`),
    "",
    "Variants (three monitor processes, bench/lib/detection-watcher.ts: HealthEngines built as",
    "`lifeline monitor` builds them, targets added and removed as by a reload):",
    "",
    ...VARIANTS.map((v) => `- \`${VARIANT_INFO[v].label}\`: ${DESCRIBE[v]}`),
    "",
    "Each trial: a fresh `lifeline node --store memory --app echo` child, watched by the three monitors",
    "at once. The fault comes 2–5 s after all three saw the node healthy (a random phase against the",
    "heartbeat and the 2 s and 3 s check intervals). Times run from this process's Date.now() just",
    "before the signal (or the start of the iptables command) to the engine's time of the transition;",
    "`suspect n` counts the trials that went through `suspect` before `down` (`classic` has fall 1: no",
    "suspicion). A trial is watched until all three are down or the fault's watch time is over.",
    "`without down: states seen` lists, for the trials with no `down`, the states the monitor went",
    "through after the fault (`none`: it stayed healthy). What to expect: a connect check cannot see",
    "SIGSTOP (the kernel completes handshakes for a stopped process); a blackhole hangs connects, which",
    "`classic` convicts after its fixed 2 s timeout and `lan + tcp` only when its patient attempt ends",
    "(`timeout.max`, 8 s); under slow-connect the heartbeat connection, established before, keeps",
    "working. The healthy node was watched for the whole run by the same three monitors; `max gap",
    "between passes` is the longest time between two passing results (heartbeats, or connects).",
  ];
  const n = notes(summaries, facts, healthy, trials, opts);
  if (n.length > 0) lines.push("", "Notes:", "", ...n);
  return `${lines.join("\n")}\n`;
}

/** Median time to `down` per fault × variant; a missing bar is a variant with no `down`. */
function chart(summaries: Summary[], facts: FaultFacts[]): string {
  const shown = facts.filter((f) => !f.skipped);
  return barChart({
    title: "Time from the fault to down (median), same faults watched by all three",
    unit: "ms",
    log: true,
    series: VARIANTS.map((v) => VARIANT_INFO[v].label),
    groups: shown.map((f) => ({
      label: `${f.fault} (${f.trials} trials)`,
      values: VARIANTS.map((v) => {
        const s = summaries.find((x) => x.fault === f.fault && x.variant === v)!;
        return s.detected > 0 ? s.down.median : null;
      }),
    })),
    note:
      "n/a: no down while watched (a connect check cannot see a frozen process; under slow-connect the heartbeat " +
      "connection keeps working and lan + tcp's patient connect succeeds: degraded, not down). " +
      `Skipped: ${
        facts
          .filter((f) => f.skipped)
          .map((f) => f.fault)
          .join(", ") || "none"
      }.`,
  });
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

async function main(opts: Options, run: RunStart): Promise<number> {
  const measured = measureRun();

  const wantsNetwork = opts.faults.some((f) => NETWORK_FAULTS.includes(f));
  const noNamespace = canUseNamespaces();
  const networkSkipped = wantsNetwork ? noNamespace : undefined;
  if (networkSkipped)
    progress.log(
      `${NAME}: skipping ${NETWORK_FAULTS.join(" and ")}: ${networkSkipped}; the rest runs on the host`,
    );
  const faults = opts.faults.filter((f) => !NETWORK_FAULTS.includes(f) || networkSkipped === undefined);
  progress.log(
    `${NAME}: ${opts.trials} trials per fault (${faults.join(", ")}), ${opts.parallel} at a time (run ${opts.runId})`,
  );

  // Everything runs in the namespace when there can be one (the network faults need it; the
  // others run there too, so that every fault is measured in the same place).
  if (noNamespace === undefined) namespace = await benchNamespace(NS_PREFIX, progress);
  const where = whereRun(namespace);

  progress.update("starting the monitors and the healthy node…");
  const watchers = {} as Record<Variant, Watcher>;
  for (const v of VARIANTS) watchers[v] = new Watcher(v, opts.runId, namespace);
  await Promise.all(VARIANTS.map((v) => watchers[v].ready));

  const healthyLabel = "healthy";
  const healthyNode = await startTrialNode(healthyLabel, opts.runId, namespace);
  const healthySince = VARIANTS.map((v) => watchers[v].mark());
  for (const v of VARIANTS) watchers[v].watch(healthyLabel, `127.0.0.1:${healthyNode.port}`);
  const healthyFrom = await Promise.all(
    VARIANTS.map(async (v, i) => {
      const ok = await watchers[v].waitFor(healthyLabel, "healthy", healthySince[i]!, HEALTHY_WITHIN);
      if (!ok)
        throw new Error(`the healthy node: ${v} did not see it healthy within ${HEALTHY_WITHIN / 1000} s`);
      return watchers[v].states.indexOf(ok) + 1;
    }),
  );

  const ctx: Context = {
    opts,
    watchers,
    ns: namespace,
    done: { kill: 0, stop: 0, drop: 0, "slow-connect": 0 },
    active: new Map(),
  };
  const trials = await runTrials(ctx, faults);

  progress.update("stopping…");
  const healthy: HealthySummary[] = [];
  for (const [i, v] of VARIANTS.entries()) {
    const stats = await watchers[v].unwatch(healthyLabel);
    const after = watchers[v].of(healthyLabel, healthyFrom[i]);
    healthy.push({
      variant: v,
      watchedS: stats.watchedMs / 1000,
      passes: stats.passes,
      failedResults: stats.fails,
      transitions: after.map((s) => `${s.from}→${s.to} (${s.reason})`),
      suspect: after.filter((s) => s.to === "suspect").length,
      down: after.filter((s) => s.to === "down").length,
      otherNotHealthy: after.filter((s) => !["healthy", "suspect", "down"].includes(s.to)).length,
      maxGapMs: stats.maxGapMs,
    });
  }
  await stopChild(healthyNode.child, "SIGTERM", 5000);
  const healthyNodeExit = await healthyNode.child.exited;
  const monitorLag = Object.fromEntries(VARIANTS.map((v) => [v, watchers[v].maxLag]));
  const namespaceName = namespace?.name ?? null;
  await cleanup();
  progress.clear();
  const { elapsedS, machineCpu } = measured();

  const skippedOf = (f: Fault) => (NETWORK_FAULTS.includes(f) ? networkSkipped : undefined);
  const summaries = opts.faults.flatMap((f) => VARIANTS.map((v) => summarize(f, v, trials, skippedOf(f))));
  const facts = opts.faults.map((f) => faultFacts(f, trials, opts, skippedOf(f)));
  // Children of this run still running: by pid, by the run's marker and by node id.
  const left = leftovers(allPids, [runMarker(opts.runId), `--id ${opts.runId}-`]);
  const leftNamespaces = namespaceLeft(namespaceName);
  const md = markdown(summaries, facts, healthy, trials, opts, run, { elapsedS, machineCpu, where });
  const json = {
    ...runFields(run, { elapsedS, machineCpu }),
    settings: {
      trials: opts.trials,
      quick: opts.quick,
      parallel: opts.parallel,
      faults: opts.faults,
      runId: opts.runId,
      variants: Object.fromEntries(VARIANTS.map((v) => [v, DESCRIBE[v]])),
      settleMs: [SETTLE_MS, SETTLE_MS + SETTLE_JITTER_MS],
      observeMs: Object.fromEntries(opts.faults.map((f) => [f, observeMs(f, opts)])),
      slowWindowMs: opts.slowWindowMs,
    },
    where,
    namespace: namespaceName,
    networkSkipped: networkSkipped ?? null,
    medianDownMs: Object.fromEntries(
      opts.faults.map((f) => [
        f,
        Object.fromEntries(
          VARIANTS.map((v) => {
            const s = summaries.find((x) => x.fault === f && x.variant === v)!;
            return [v, s.detected > 0 ? s.down.median : null];
          }),
        ),
      ]),
    ),
    faults: facts,
    summaries,
    healthy,
    healthyNodeExit,
    monitorMaxLagMs: monitorLag,
    trials,
    childPids: allPids,
    leftoverPids: left,
    leftoverNamespaces: leftNamespaces,
  };
  const paths = writeResults(opts.out, NAME, json, md);
  paths.push(writeChart(opts.out, NAME, chart(summaries, facts)));
  process.stdout.write(
    `${medianTable(summaries, opts.faults)}\n\n${detailTable(summaries)}\n\n${healthyTable(healthy)}\n`,
  );
  const n = notes(summaries, facts, healthy, trials, opts);
  if (n.length > 0) process.stdout.write(`\n${n.join("\n")}\n`);
  progress.log(`results: ${paths.join(", ")}`);
  return leftBehind(progress, left, leftNamespaces);
}

runBenchmark({ name: NAME, usage: USAGE, parse: parseOptions, main, cleanup, progress });
