/**
 * false-positives: healthy targets under disturbances that are not failures — random packet
 * loss, latency spikes, the monitor's own event-loop stalls — and how often each monitor
 * variant nevertheless calls them `suspect` or `down`, and flaps.
 *
 *   npx tsx bench/false-positives.ts [--minutes N] [--quick] [--targets T]
 *                                    [--disturbances loss,latency,stall] [--loss P] [--one-way]
 *                                    [--out DIR] [--run-id ID]
 *
 * Every disturbance runs at the same time as the others, each on its own healthy targets
 * (`lifeline node --store memory --app echo` children, T per disturbance, default 2), and
 * every variant watches the same targets at the same time, so the whole run lasts N minutes
 * (default 10; `--quick`: 1) and the variants' numbers come from the same conditions:
 *
 * - `lan + heartbeat`: `lifeline://127.0.0.1:PORT`, the heartbeat probe with its defaults;
 * - `lan + tcp`: `tcp://127.0.0.1:PORT`, a connect check with the `lan` defaults;
 * - `classic`: the same tcp check under `--profile classic`, the seed's monitor (fixed 2 s
 *   timeout, interval 3 s, fall 1, rise 1, local health off) — an engine per target, so that
 *   one slow connect does not delay the checks of the others (as the seed's loop would).
 *
 * Disturbances:
 *
 * - `control`: nothing. The same monitors watch their own undisturbed targets: any verdict
 *   here is the machine's noise, not a disturbance's.
 * - `loss`: P (default 0.2) random packet loss on the targets' ports, in both directions
 *   (`--one-way`: client → server only): iptables `-m statistic --mode random` DROP rules on
 *   INPUT of the benchmark's network namespace, one for `--dport PORT` (monitor → node) and
 *   one for `--sport PORT` (node → monitor; loopback packets pass INPUT once each way). A
 *   round trip loses a packet 1 − 0.8² = 36 % of the time. Needs root (skipped otherwise,
 *   with the reason).
 * - `latency`: the targets are reached through a userspace proxy (bench/lib/latency-proxy.ts)
 *   that delays every byte by 1 ms each way, and every 5–15 s by 300–1500 ms for 2–5 s. The
 *   proxy's kernel accepts connections at once, so a connect check sees the proxy, not the
 *   delay; the heartbeat probe's connection carries the delayed bytes.
 * - `stall`: the monitor itself stalls — a busy loop of 200–1500 ms every 5–20 s in the
 *   monitor process (a `stall` command to bench/lib/false-positive-watcher.ts). These are
 *   separate monitor processes (one per variant) watching the control targets; they all
 *   stall with the same durations, one after the other, so that no two busy loops share the
 *   machine's CPUs at once. `lan` measures its stalls and discounts them; `classic` has local
 *   health off; a fourth stalled monitor, `lan + heartbeat, local health off`, shows what the
 *   discounting does for the heartbeat probe (the one variant a short stall can hurt).
 *
 * The nodes, the proxy and the monitors run inside a network namespace this benchmark
 * creates (without root: on the host, and `loss` is skipped). The run starts once every
 * monitor sees every target healthy; the disturbances start then and everything is counted
 * from then on for N minutes: results (failed ones, and those the engine discounted as the
 * monitor's own fault), `suspect` and `down` transitions, flaps (a `down` followed by a
 * return to a serving state), the longest run of failed results, and the time spent `down`.
 *
 * Prints Markdown tables on stdout and writes DIR/false-positives.json, .md and .svg (`down`
 * verdicts per target-hour, disturbance × variant; DIR: --out, else bench/results — except for
 * a `--quick` run without --out, which only prints: a smoke run must not replace the results).
 */
import os from "node:os";
import { join } from "node:path";
import { addCountedLoss, readCountedLoss, type Undo } from "../test/fault/iptables.ts";
import { canUseNamespaces, type Namespace } from "../test/fault/netns.ts";
import { type CommonOptions, parseBenchArgs, pickList, UsageError } from "./lib/args.ts";
import {
  childEnv,
  guard,
  Interrupted,
  inNamespace,
  interrupted,
  leftBehind,
  leftovers,
  liveChildren,
  type NodeChild,
  type RunningNode,
  repoRoot,
  runBenchmark,
  runMarker,
  spawnNode,
  startNode,
  stopAll,
} from "./lib/children.ts";
import { DEFAULT_SPIKES } from "./lib/latency-proxy.ts";
import { benchNamespace, namespaceLeft, whereRun } from "./lib/namespace.ts";
import { measureRun, type RunMeasured } from "./lib/proc.ts";
import { Progress } from "./lib/progress.ts";
import type { RunStart } from "./lib/report.ts";
import { type Cell, markdownHeader, markdownTable, num, runFields, writeResults } from "./lib/report.ts";
import { barChart, writeChart } from "./lib/svg-chart.ts";
import { MONITOR_VARIANTS, type MonitorVariant, type StateLine, WatcherProcess } from "./lib/watcher.ts";

const NAME = "false-positives";
const WATCHER = join(repoRoot, "bench", "lib", "false-positive-watcher.ts");
const PROXY = join(repoRoot, "bench", "lib", "latency-proxy.ts");
/** Namespaces of this benchmark: `llfp-PID-N` (cleanupLeftovers knows them by the dead pid). */
const NS_PREFIX = "llfp-";

const DISTURBANCES = ["control", "loss", "latency", "stall"] as const;
type Disturbance = (typeof DISTURBANCES)[number];
/** The ones that can be left out; `control` always runs. */
const OPTIONAL: readonly Disturbance[] = ["loss", "latency", "stall"];

const VARIANTS = ["heartbeat", "tcp", "classic"] as const;
/** The stall also gets a counterfactual: the heartbeat probe with local health off, to show
 *  what the discounting does (the other disturbances do not depend on it). */
const STALL_VARIANTS = [...VARIANTS, "heartbeatNoLocal"] as const;
type Variant = (typeof STALL_VARIANTS)[number];

const VARIANT_INFO: Record<Variant, MonitorVariant> = {
  ...MONITOR_VARIANTS,
  heartbeatNoLocal: {
    ...MONITOR_VARIANTS.heartbeat,
    label: "lan + heartbeat, local health off",
    localHealthOff: true,
  },
};

/** Each variant, as the results describe it. */
const DESCRIBE: Record<Variant, string> = {
  heartbeat: "lifeline://127.0.0.1:PORT (heartbeat 500 ms, suspectPhi 2, downPhi 8: the defaults), lan",
  tcp: "tcp://127.0.0.1:PORT, lan defaults (interval 2 s, fastInterval 500 ms, timeout 1–8 s adaptive, patience, fall 3, rise 2)",
  classic:
    "tcp://127.0.0.1:PORT, --profile classic (fixed 2 s timeout, interval 3 s, fall 1, rise 1, local health off), an engine per target",
  heartbeatNoLocal:
    "stall only: lan + heartbeat with `monitor.localHealth.enabled: false` (stalls not measured, not discounted)",
};

const variantsOf = (d: Disturbance): readonly Variant[] => (d === "stall" ? STALL_VARIANTS : VARIANTS);

/** Monitor stalls: a busy loop of STALL_MS every STALL_EVERY_MS (ranges, uniform). */
const STALL_MS: [number, number] = [200, 1500];
const STALL_EVERY_MS: [number, number] = [5000, 20_000];
/** Between one variant's stall and the next's in the same round. */
const STALL_STAGGER_MS = 150;
/** Time every monitor gets to see every target healthy before the run starts. */
const HEALTHY_WITHIN = 30_000;
const MAX_MINUTES = 240;
const MAX_TARGETS = 10;

const USAGE = `usage: npx tsx bench/${NAME}.ts [options]
  --minutes N        length of the run, minutes (default 10; --quick 1; fractions allowed)
  --quick            a 1-minute run (an explicit --minutes still wins)
  --targets T        healthy targets per disturbance (default 2)
  --disturbances L   comma-separated subset of: ${OPTIONAL.join(", ")} (control always runs)
  --loss P           packet loss probability, 0–1 (default 0.2)
  --one-way          loss only on packets to the targets (default: both directions)
  --out DIR          results directory (default bench/results; a --quick run without it writes none)
  --run-id ID        tag for this run's child processes (default: random)`;

interface Options extends Omit<CommonOptions, "out"> {
  minutes: number;
  targets: number;
  disturbances: Disturbance[];
  loss: number;
  oneWay: boolean;
  /** undefined: a quick run without --out, which writes no files. */
  out: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values, common } = parseBenchArgs(
    argv,
    USAGE,
    ["minutes", "targets", "disturbances", "loss"],
    ["one-way"],
  );
  const quick = common.quick;
  let minutes = quick ? 1 : 10;
  if (values.minutes !== undefined) {
    minutes = Number(values.minutes);
    if (!Number.isFinite(minutes) || minutes <= 0 || minutes > MAX_MINUTES)
      throw new UsageError(`--minutes must be a number in (0, ${MAX_MINUTES}]`);
  }
  let targets = 2;
  if (values.targets !== undefined) {
    targets = Number(values.targets);
    if (!Number.isInteger(targets) || targets < 1 || targets > MAX_TARGETS)
      throw new UsageError(`--targets must be an integer in [1, ${MAX_TARGETS}]`);
  }
  let disturbances: Disturbance[] = [...DISTURBANCES];
  if (values.disturbances !== undefined) {
    const picked = pickList("disturbances", values.disturbances, DISTURBANCES, {
      known: OPTIONAL,
      skipEmpty: true,
    });
    disturbances = DISTURBANCES.filter((d) => d === "control" || picked.includes(d));
  }
  let loss = 0.2;
  if (values.loss !== undefined) {
    loss = Number(values.loss);
    if (!(loss >= 0 && loss <= 1)) throw new UsageError("--loss must be a probability in [0, 1]");
  }
  return {
    ...common,
    minutes,
    targets,
    disturbances,
    loss,
    oneWay: values["one-way"],
    out: values.out === undefined && quick ? undefined : common.out,
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const between = ([lo, hi]: [number, number]) => lo + (hi - lo) * Math.random();

const allPids: number[] = [];
const progress = new Progress();

// ---------------------------------------------------------------------------------------
// Monitors

interface ResultLine {
  id: string;
  at: number;
  status: "pass" | "warn" | "fail";
  kind?: string;
  provisional: boolean;
  spoiled: string | null;
  late: boolean;
}

interface StallLine {
  requestedMs: number;
  start: number;
  end: number;
}

type Role = "calm" | "stall";

/** A false-positive-watcher child: one variant, watching its targets; it can be made to stall. */
class Watcher extends WatcherProcess {
  readonly results: ResultLine[] = [];
  readonly stalls: StallLine[] = [];
  /** Event-loop delay per 5 s tick: [wall ms, max lag ms]. */
  readonly lags: Array<[number, number]> = [];
  /** `down` transitions so far, by target id (for the progress line). */
  readonly downs = new Map<string, number>();

  constructor(
    readonly variant: Variant,
    readonly role: Role,
    runId: string,
    ns: Namespace | undefined,
  ) {
    const info = VARIANT_INFO[variant];
    super({
      name: `monitor (${info.label}, ${role})`,
      script: WATCHER,
      variant: info,
      args: [`--role=${role}`],
      runId,
      ns,
      pids: allPids,
      log: (line) => progress.log(line),
    });
  }

  protected override onState(s: StateLine): void {
    if (s.to === "down") this.downs.set(s.id, (this.downs.get(s.id) ?? 0) + 1);
  }

  protected override onMessage(msg: Record<string, unknown>): void {
    if (msg.type === "result") this.results.push(msg as unknown as ResultLine);
    else if (msg.type === "stalled") this.stalls.push(msg as unknown as StallLine);
    else if (msg.type === "tick") this.lags.push([Date.now(), Number(msg.lag) || 0]);
  }

  get label(): string {
    return VARIANT_INFO[this.variant].label;
  }

  stall(ms: number): void {
    this.send({ cmd: "stall", ms });
  }

  /** Resolves once `id` has been seen `healthy`; rejects after `ms` or if the child exits. */
  waitHealthy(id: string, ms: number): Promise<void> {
    const seen = new Promise<void>((resolvePromise, reject) => {
      const poll = setInterval(() => {
        if (interrupted()) {
          clearInterval(poll);
          reject(new Interrupted());
        } else if (this.states.some((s) => s.id === id && s.to === "healthy")) {
          clearInterval(poll);
          resolvePromise();
        }
      }, 50);
      void this.child.exited.then(() => clearInterval(poll));
    });
    return guard(
      seen,
      this.child,
      ms,
      `healthy ${id}: ${JSON.stringify(this.states.filter((s) => s.id === id))}`,
    );
  }
}

// ---------------------------------------------------------------------------------------
// Targets, proxy, loss

/** Starts `lifeline node` (memory store, echo app) on port 0, on the host or in `ns`. */
function startTarget(label: string, runId: string, ns: Namespace | undefined): Promise<RunningNode> {
  return startNode({ name: `node ${label}`, id: `${runId}-${label}`, adminOff: true, ns, pids: allPids });
}

interface SpikeLine {
  port: number;
  start: number;
  end: number;
  delayMs: number;
}

interface RunningProxy {
  child: NodeChild;
  /** Proxy port by target port. */
  portOf: Map<number, number>;
  spikes: SpikeLine[];
  start(): void;
}

async function startProxy(
  targets: number[],
  runId: string,
  ns: Namespace | undefined,
): Promise<RunningProxy> {
  let gotPorts: (p: Array<{ target: string; port: number }>) => void = () => {};
  const portsP = new Promise<Array<{ target: string; port: number }>>((r) => {
    gotPorts = r;
  });
  const spikes: SpikeLine[] = [];
  const child = spawnNode(
    "latency proxy",
    PROXY,
    ["--targets", targets.map((p) => `127.0.0.1:${p}`).join(","), runMarker(runId)],
    {
      env: childEnv(),
      ...inNamespace(ns),
      onLine: (msg) => {
        if (msg.type === "listening") gotPorts(msg.proxies as Array<{ target: string; port: number }>);
        else if (msg.type === "spike") spikes.push(msg as unknown as SpikeLine);
      },
    },
  );
  allPids.push(child.pid);
  const ports = await guard(portsP, child, 60_000, "its listening line");
  const portOf = new Map(ports.map((p) => [Number(p.target.split(":").pop()), p.port]));
  return {
    child,
    portOf,
    spikes,
    start: () => child.child.stdin?.write(`${JSON.stringify({ cmd: "start" })}\n`),
  };
}

interface LossCounter {
  port: number;
  direction: "in" | "out";
  packets: number;
  dropped: number;
}

/** Two rules per port and direction: one that only counts, then the random DROP. */
async function applyLoss(
  ns: Namespace,
  ports: number[],
  opts: Options,
): Promise<{ undos: Undo[]; tag: string }> {
  const tag = `llfp-${opts.runId}`;
  const undos: Undo[] = [];
  for (const port of ports)
    for (const dir of opts.oneWay ? (["in"] as const) : (["in", "out"] as const)) {
      const match = ["-p", "tcp", dir === "in" ? "--dport" : "--sport", String(port)];
      undos.push(...(await addCountedLoss(ns, match, opts.loss, `${tag}:${dir}:${port}`)));
    }
  return { undos, tag };
}

async function lossCounters(ns: Namespace, tag: string): Promise<LossCounter[]> {
  return [...(await readCountedLoss(ns, tag))].map(([label, c]) => {
    const [direction, port] = label.split(":") as ["in" | "out", string];
    return { port: Number(port), direction, ...c };
  });
}

// ---------------------------------------------------------------------------------------
// Counting

interface Row {
  disturbance: Disturbance;
  variant: Variant;
  targets: number;
  /** Seconds counted (the run's window). */
  seconds: number;
  results: number;
  failed: number;
  /** Results the engine did not count: the monitor's own fault (a stall, out of descriptors). */
  discounted: number;
  suspect: number;
  down: number;
  /** Transitions into `degraded` (slow, or a warning): serving, but called unwell. */
  degraded: number;
  /** `down` followed by a return to a serving state (recovering, healthy, degraded). */
  flaps: number;
  maxConsecutiveFailures: number;
  /** Seconds spent `down`, all targets together. */
  downSeconds: number;
  downPerTargetHour: number;
  /** Targets `down` at the end of the window. */
  endedDown: number;
  downKinds: Record<string, number>;
  /** Other transitions into a state that is not `healthy` (degraded, recovering), counted. */
  other: Record<string, number>;
  /** A few reasons given for `down`, for the notes. */
  downReasons: string[];
  /** The first reason given for `degraded`. */
  degradedReason?: string;
  skipped?: string;
}

const SERVING = new Set(["healthy", "degraded", "recovering"]);

function countRow(
  disturbance: Disturbance,
  variant: Variant,
  w: Watcher | undefined,
  ids: string[],
  from: number,
  to: number,
  skipped: string | undefined,
): Row {
  const row: Row = {
    disturbance,
    variant,
    targets: ids.length,
    seconds: (to - from) / 1000,
    results: 0,
    failed: 0,
    discounted: 0,
    suspect: 0,
    down: 0,
    degraded: 0,
    flaps: 0,
    maxConsecutiveFailures: 0,
    downSeconds: 0,
    downPerTargetHour: 0,
    endedDown: 0,
    downKinds: {},
    other: {},
    downReasons: [],
  };
  if (skipped || !w) {
    row.skipped = skipped ?? "not run";
    return row;
  }
  for (const id of ids) {
    let run = 0;
    for (const r of w.results) {
      if (r.id !== id || r.at < from || r.at > to) continue;
      if (r.spoiled) {
        row.discounted++;
        continue;
      }
      row.results++;
      if (r.status === "fail") {
        row.failed++;
        run++;
        row.maxConsecutiveFailures = Math.max(row.maxConsecutiveFailures, run);
      } else run = 0;
    }
    const mine = w.states.filter((s) => s.id === id);
    let state = "unknown";
    let since = from;
    for (const s of mine) {
      if (s.at < from) {
        state = s.to;
        continue;
      }
      if (s.at > to) break;
      if (state === "down") row.downSeconds += (s.at - since) / 1000;
      if (s.to === "suspect") row.suspect++;
      else if (s.to === "down") {
        row.down++;
        const k = s.kind ?? "?";
        row.downKinds[k] = (row.downKinds[k] ?? 0) + 1;
        if (row.downReasons.length < 3) row.downReasons.push(`${id}: ${s.reason}`);
      } else if (s.to === "degraded") {
        row.degraded++;
        row.degradedReason ??= `${id}: ${s.reason}`;
      } else if (s.to !== "healthy") row.other[s.to] = (row.other[s.to] ?? 0) + 1;
      if (s.from === "down" && SERVING.has(s.to)) row.flaps++;
      state = s.to;
      since = s.at;
    }
    if (state === "down") {
      row.downSeconds += (to - since) / 1000;
      row.endedDown++;
    }
  }
  row.downPerTargetHour = row.down / ids.length / (row.seconds / 3600);
  return row;
}

// ---------------------------------------------------------------------------------------
// Report

const DISTURBANCE_TITLES: Record<Disturbance, string> = {
  control: "no disturbance (the machine's own noise)",
  loss: "random packet loss on the targets' ports (iptables statistic DROP, in the namespace)",
  latency: "latency spikes through a userspace proxy",
  stall: "the monitor process stalls its own event loop (busy loop)",
};

const counted = (m: Record<string, number>): string =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ×${n}`)
    .join(", ");

function headlineTable(rows: Row[], disturbances: Disturbance[]): string {
  return markdownTable(
    ["down · suspect · flaps", ...VARIANTS.map((v) => VARIANT_INFO[v].label)],
    disturbances.map((d) => [
      d,
      ...VARIANTS.map((v): Cell => {
        const r = rows.find((x) => x.disturbance === d && x.variant === v)!;
        return r.skipped ? "skipped" : `${r.down} · ${r.suspect} · ${r.flaps}`;
      }),
    ]),
  );
}

function detailTable(rows: Row[]): string {
  return markdownTable(
    [
      "disturbance",
      "variant",
      "targets",
      "results",
      "failed",
      "discounted",
      "suspect",
      "down",
      "flaps",
      "degraded",
      "max consecutive failures",
      "time down",
      "down / target-hour",
      "down kinds",
    ],
    rows.map((r) =>
      r.skipped
        ? [r.disturbance, VARIANT_INFO[r.variant].label, r.targets, ...Array(10).fill("n/a"), "skipped"]
        : [
            r.disturbance,
            VARIANT_INFO[r.variant].label,
            r.targets,
            r.results,
            r.failed,
            r.discounted,
            r.suspect,
            r.down,
            r.flaps,
            r.degraded,
            r.maxConsecutiveFailures,
            `${num(r.downSeconds, 1)} s`,
            num(r.downPerTargetHour, 1),
            counted(r.downKinds) || "none",
          ],
    ),
  );
}

interface Facts {
  windowS: number;
  loss?: { counters: LossCounter[]; probability: number; oneWay: boolean; skipped?: string };
  latency?: { spikes: SpikeLine[]; targets: number };
  stall?: Partial<Record<Variant, StallLine[]>>;
  /** Largest event-loop delay each monitor reported in the window, ms. */
  maxLag: Record<string, number>;
}

function notes(rows: Row[], facts: Facts): string[] {
  const out: string[] = [];
  const l = facts.loss;
  if (l?.skipped) out.push(`- loss: skipped — ${l.skipped}`);
  else if (l) {
    for (const dir of ["in", "out"] as const) {
      const cs = l.counters.filter((c) => c.direction === dir);
      if (cs.length === 0) continue;
      const packets = cs.reduce((s, c) => s + c.packets, 0);
      const dropped = cs.reduce((s, c) => s + c.dropped, 0);
      out.push(
        `- loss, ${dir === "in" ? "monitor → node" : "node → monitor"}: ${dropped} of ${packets} packets dropped ` +
          `(${num(packets > 0 ? (100 * dropped) / packets : Number.NaN, 1)} %; the rules' counters over the run)`,
      );
    }
  }
  const lat = facts.latency;
  if (lat) {
    const n = lat.spikes.length;
    const total = lat.spikes.reduce((s, x) => s + (x.end - x.start), 0) / 1000;
    const delays = lat.spikes.map((s) => s.delayMs);
    out.push(
      `- latency: ${n} spikes over ${lat.targets} targets (${num(n / lat.targets, 1)} each), ` +
        `${n > 0 ? `${Math.min(...delays)}–${Math.max(...delays)} ms each way` : "none"}, ` +
        `${num((100 * total) / (lat.targets * facts.windowS), 0)} % of the time in a spike`,
    );
  }
  if (facts.stall) {
    for (const v of STALL_VARIANTS) {
      const st = facts.stall[v];
      if (!st || st.length === 0) continue;
      const lens = st.map((s) => s.end - s.start);
      out.push(
        `- stall, ${VARIANT_INFO[v].label}: ${st.length} stalls of ${Math.min(...lens)}–${Math.max(...lens)} ms ` +
          `(${num(lens.reduce((a, b) => a + b, 0) / 1000, 1)} s in all)`,
      );
    }
  }
  const lags = Object.entries(facts.maxLag)
    .filter(([k]) => k.endsWith("(calm)"))
    .map(([k, v]) => `${k.replace(" (calm)", "")} ${num(v)} ms`)
    .join(", ");
  if (lags)
    out.push(`- largest event-loop delay of the monitors that were not made to stall (5 s ticks): ${lags}`);
  for (const r of rows) {
    if (r.skipped) continue;
    const bits: string[] = [];
    if (r.endedDown > 0) bits.push(`${r.endedDown} target(s) still down at the end`);
    if (Object.keys(r.other).length > 0) bits.push(`other transitions: ${counted(r.other)}`);
    if (r.degraded > 0 && r.degradedReason) bits.push(`degraded: "${r.degradedReason}"`);
    if (r.downReasons.length > 0) bits.push(`e.g. "${r.downReasons[0]}"`);
    if (bits.length > 0) out.push(`- ${r.disturbance}, ${VARIANT_INFO[r.variant].label}: ${bits.join("; ")}`);
  }
  const control = rows.filter((r) => r.disturbance === "control" && !r.skipped && r.suspect + r.down > 0);
  if (control.length > 0)
    out.push(
      "- the control targets were not disturbed: their verdicts are the machine's own noise (CPU contention " +
        "among the benchmark's processes), a floor for the other rows",
    );
  return out;
}

function markdown(
  rows: Row[],
  facts: Facts,
  opts: Options,
  run: RunStart,
  meta: RunMeasured & { where: string },
): string {
  const disturbances = [...new Set(rows.map((r) => r.disturbance))];
  const [sLo, sHi] = DEFAULT_SPIKES.spikeMs;
  const lines = [
    ...markdownHeader(run, true),
    `Run: ${num(facts.windowS / 60, 1)} minutes counted (${num(meta.elapsedS)} s in all), ${opts.targets} healthy ` +
      `targets per disturbance, all disturbances and all three monitors at once, in ${meta.where}; the machine's ` +
      `CPU use over the run: ${num(meta.machineCpu)} % of ${os.cpus().length * 100} % (all processes)`,
    "",
    "`down` verdicts · `suspect` verdicts · flaps (down → up), summed over the targets; every target was healthy",
    "throughout, so each one is a false positive:",
    "",
    headlineTable(rows, disturbances),
    "",
    detailTable(rows),
    "",
    "Disturbances (each on its own targets; the stall on separate monitor processes):",
    "",
    ...disturbances.map((d) => {
      const extra =
        d === "loss"
          ? `: probability ${opts.loss} ${opts.oneWay ? "on packets to the node only" : "each way (monitor → node and node → monitor: a round trip loses a packet 36 % of the time)"}; nodes and monitors in the namespace`
          : d === "latency"
            ? `: 1 ms each way, and every ${DEFAULT_SPIKES.everyMs[0] / 1000}–${DEFAULT_SPIKES.everyMs[1] / 1000} s ` +
              `${sLo}–${sHi} ms each way for ${DEFAULT_SPIKES.lastsMs[0] / 1000}–${DEFAULT_SPIKES.lastsMs[1] / 1000} s ` +
              "(bench/lib/latency-proxy.ts). The proxy's kernel accepts connections at once: a connect check sees " +
              "the proxy, not the delay; the heartbeat connection carries it"
            : d === "stall"
              ? `: a busy loop of ${STALL_MS[0]}–${STALL_MS[1]} ms every ${STALL_EVERY_MS[0] / 1000}–${STALL_EVERY_MS[1] / 1000} s ` +
                "in each variant's stalled monitor (the same durations for all, one after the other), watching " +
                "the control targets"
              : "";
      return `- \`${d}\`: ${DISTURBANCE_TITLES[d]}${extra}`;
    }),
    "",
    "Variants (monitor processes, bench/lib/false-positive-watcher.ts: HealthEngines built as",
    "`lifeline monitor` builds them):",
    "",
    ...STALL_VARIANTS.map((v) => `- \`${VARIANT_INFO[v].label}\`: ${DESCRIBE[v]}`),
    "",
    "Columns: `results` counted by the engine (a heartbeat, or a check's answer or timeout; a patient",
    "attempt's provisional timeout is a failed result of its own), `failed` of them, `discounted`: results",
    "the engine set aside as the monitor's own fault (a stall); `suspect` and `down`: transitions into",
    "those states; `flaps`: a `down` followed by a return to a serving state; `degraded`: transitions",
    "into `degraded` (still serving, but called slow or unwell); `max consecutive failures`: the longest",
    "run of failed results of one target; `time down`: all targets together; `down kinds`: the error",
    "kind each `down` gave.",
  ];
  const n = notes(rows, facts);
  if (n.length > 0) lines.push("", "Notes:", "", ...n);
  return `${lines.join("\n")}\n`;
}

function chart(rows: Row[], facts: Facts): string {
  const disturbances = [...new Set(rows.map((r) => r.disturbance))].filter(
    (d) => !rows.some((r) => r.disturbance === d && r.skipped),
  );
  return barChart({
    title: "False down verdicts per target-hour, healthy targets (same run, all variants at once)",
    unit: "down verdicts per target-hour",
    series: VARIANTS.map((v) => VARIANT_INFO[v].label),
    groups: disturbances.map((d) => ({
      label: d,
      values: VARIANTS.map(
        (v) => rows.find((r) => r.disturbance === d && r.variant === v)!.downPerTargetHour,
      ),
    })),
    note:
      `${num(facts.windowS / 60, 1)} minutes. loss: random DROP each way; latency: spikes through a proxy ` +
      "(connect checks see the proxy accept at once); stall: busy loops in the monitor process. " +
      `Skipped: ${
        rows
          .filter((r) => r.skipped && r.variant === "heartbeat")
          .map((r) => r.disturbance)
          .join(", ") || "none"
      }.`,
  });
}

// ---------------------------------------------------------------------------------------
// Main

let namespace: Namespace | undefined;
let stopStalls: (() => void) | undefined;

async function cleanup(): Promise<void> {
  stopStalls?.();
  await stopAll(3000);
  await namespace?.destroy();
}

/** Stalls the stalled monitors one after the other, round after round, until stopped. */
function stallLoop(watchers: Watcher[]): { done: Promise<void>; stop: () => void } {
  let stopped = false;
  let wake: () => void = () => {};
  const nap = (ms: number) =>
    new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      wake = () => {
        clearTimeout(t);
        r();
      };
    });
  const done = (async () => {
    while (!stopped) {
      await nap(between(STALL_EVERY_MS));
      if (stopped) break;
      const ms = Math.round(between(STALL_MS));
      for (const w of watchers) {
        if (stopped) break;
        w.stall(ms);
        await nap(ms + STALL_STAGGER_MS);
      }
    }
  })();
  return {
    done,
    stop: () => {
      stopped = true;
      wake();
    },
  };
}

async function main(opts: Options, run: RunStart): Promise<number> {
  const measured = measureRun();
  const has = (d: Disturbance) => opts.disturbances.includes(d);

  const noNamespace = canUseNamespaces();
  const lossSkipped = has("loss") ? noNamespace : undefined;
  if (lossSkipped) progress.log(`${NAME}: skipping loss: ${lossSkipped}; the rest runs on the host`);
  if (noNamespace === undefined) namespace = await benchNamespace(NS_PREFIX, progress);
  const where = whereRun(namespace);
  const running = opts.disturbances.filter((d) => d !== "loss" || !lossSkipped);
  progress.log(
    `${NAME}: ${num(opts.minutes, 1)} min, ${opts.targets} targets per disturbance (${running.join(", ")}), ` +
      `in ${where} (run ${opts.runId})`,
  );

  // Targets: control (also watched by the stalled monitors), loss, latency (behind the proxy).
  progress.update("starting the nodes…");
  const ids = (d: Disturbance) => Array.from({ length: opts.targets }, (_, i) => `${d}-${i + 1}`);
  const nodeGroups: Disturbance[] = ["control", ...running.filter((d) => d === "loss" || d === "latency")];
  const nodes = new Map<string, RunningNode>();
  for (const d of nodeGroups)
    for (const id of ids(d)) {
      if (interrupted()) throw new Interrupted();
      nodes.set(id, await startTarget(id, opts.runId, namespace));
    }
  let proxy: RunningProxy | undefined;
  if (running.includes("latency")) {
    progress.update("starting the latency proxy…");
    proxy = await startProxy(
      ids("latency").map((id) => nodes.get(id)!.port),
      opts.runId,
      namespace,
    );
  }

  progress.update("starting the monitors…");
  const calm = {} as Record<Variant, Watcher>;
  const stalled = {} as Record<Variant, Watcher>;
  for (const v of VARIANTS) calm[v] = new Watcher(v, "calm", opts.runId, namespace);
  if (running.includes("stall"))
    for (const v of STALL_VARIANTS) stalled[v] = new Watcher(v, "stall", opts.runId, namespace);
  const watchers = [...Object.values(calm), ...Object.values(stalled)];
  await Promise.all(watchers.map((w) => w.ready));

  /** What each monitor watches: [target id, host:port]. */
  const plan = new Map<Watcher, Array<[string, string]>>();
  for (const v of STALL_VARIANTS) {
    const list: Array<[string, string]> = [];
    for (const d of running) {
      if (d === "stall") continue;
      for (const id of ids(d)) {
        const port = d === "latency" ? proxy!.portOf.get(nodes.get(id)!.port)! : nodes.get(id)!.port;
        list.push([id, `127.0.0.1:${port}`]);
      }
    }
    if (calm[v]) plan.set(calm[v], list);
    if (stalled[v])
      plan.set(
        stalled[v],
        ids("stall").map((id, i) => [id, `127.0.0.1:${nodes.get(ids("control")[i]!)!.port}`]),
      );
  }
  for (const [w, list] of plan) for (const [id, hp] of list) w.watch(id, hp);
  progress.update("waiting for every monitor to see every target healthy…");
  await Promise.all([...plan].flatMap(([w, list]) => list.map(([id]) => w.waitHealthy(id, HEALTHY_WITHIN))));

  // The run: disturbances on, then N minutes counted.
  const from = Date.now();
  let loss: { undos: Undo[]; tag: string } | undefined;
  if (running.includes("loss"))
    loss = await applyLoss(
      namespace!,
      ids("loss").map((id) => nodes.get(id)!.port),
      opts,
    );
  proxy?.start();
  const stalls = running.includes("stall") ? stallLoop(STALL_VARIANTS.map((v) => stalled[v])) : undefined;
  stopStalls = stalls?.stop;
  const endAt = from + opts.minutes * 60_000;
  const show = () => {
    const left = Math.max(0, endAt - Date.now()) / 1000;
    const downs = running
      .map((d) => {
        const per = VARIANTS.map((v) => {
          const w = d === "stall" ? stalled[v] : calm[v];
          return ids(d).reduce((s, id) => s + (w?.downs.get(id) ?? 0), 0);
        });
        return `${d} ${per.join("/")}`;
      })
      .join(" · ");
    progress.update(`${num(left)} s left · down (heartbeat/tcp/classic): ${downs}`);
  };
  while (Date.now() < endAt) {
    if (interrupted()) throw new Interrupted();
    show();
    await sleep(Math.min(1000, endAt - Date.now()));
  }
  const to = Date.now();
  stalls?.stop();
  await stalls?.done;
  const counters = loss ? await lossCounters(namespace!, loss.tag) : [];
  for (const u of loss?.undos ?? []) await u();
  // Every child must have lived through the run: a node or a monitor that died would make
  // its row meaningless.
  const live = new Set(liveChildren());
  const died = [...watchers.map((w) => w.child), ...[...nodes.values()].map((n) => n.child)]
    .concat(proxy ? [proxy.child] : [])
    .filter((c) => !live.has(c))
    .map((c) => `${c.name}: ${c.stderrTail.slice(-3).join(" / ")}`);

  progress.update("stopping…");
  const namespaceName = namespace?.name ?? null;
  await cleanup();
  progress.clear();
  const { elapsedS, machineCpu } = measured();

  const rows: Row[] = opts.disturbances.flatMap((d) =>
    variantsOf(d).map((v) => {
      const skipped = d === "loss" ? lossSkipped : undefined;
      const w = d === "stall" ? stalled[v] : calm[v];
      return countRow(d, v, w, ids(d), from, to, skipped);
    }),
  );
  const maxLag: Record<string, number> = {};
  for (const w of watchers)
    maxLag[`${w.label} (${w.role})`] = Math.max(
      0,
      ...w.lags.filter(([at]) => at >= from && at <= to + 5000).map(([, l]) => l),
    );
  const facts: Facts = { windowS: (to - from) / 1000, maxLag };
  if (has("loss"))
    facts.loss = {
      counters,
      probability: opts.loss,
      oneWay: opts.oneWay,
      ...(lossSkipped ? { skipped: lossSkipped } : {}),
    };
  if (proxy) facts.latency = { spikes: proxy.spikes.filter((s) => s.start <= to), targets: opts.targets };
  if (running.includes("stall"))
    facts.stall = Object.fromEntries(
      STALL_VARIANTS.map((v) => [v, stalled[v]!.stalls.filter((s) => s.start >= from && s.start <= to)]),
    ) as Record<Variant, StallLine[]>;

  // Children of this run still running: by pid, by the run's marker and by node id.
  const left = leftovers(allPids, [runMarker(opts.runId), `--id ${opts.runId}-`]);
  const leftNamespaces = namespaceLeft(namespaceName);
  const md = markdown(rows, facts, opts, run, { elapsedS, machineCpu, where });
  const transitions = (w: Watcher | undefined, d: Disturbance) =>
    w
      ? w.states
          .filter((s) => ids(d).includes(s.id) && s.at >= from && s.at <= to)
          .map((s) => ({ ...s, at: s.at - from }))
      : [];
  const json = {
    ...runFields(run, { elapsedS, machineCpu }),
    settings: {
      minutes: opts.minutes,
      quick: opts.quick,
      targetsPerDisturbance: opts.targets,
      disturbances: opts.disturbances,
      lossProbability: opts.loss,
      lossDirections: opts.oneWay ? ["monitor → node"] : ["monitor → node", "node → monitor"],
      latency: DEFAULT_SPIKES,
      stall: { ms: STALL_MS, everyMs: STALL_EVERY_MS, staggerMs: STALL_STAGGER_MS },
      runId: opts.runId,
      variants: Object.fromEntries(STALL_VARIANTS.map((v) => [v, DESCRIBE[v]])),
    },
    where,
    namespace: namespaceName,
    lossSkipped: lossSkipped ?? null,
    window: {
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      seconds: (to - from) / 1000,
    },
    rows,
    facts,
    /** Transitions in the window, per disturbance and variant; `at` in ms from the start. */
    transitions: Object.fromEntries(
      running.map((d) => [
        d,
        Object.fromEntries(
          variantsOf(d).map((v) => [v, transitions(d === "stall" ? stalled[v] : calm[v], d)]),
        ),
      ]),
    ),
    childrenDiedDuringTheRun: died,
    childPids: allPids,
    proxyPid: proxy?.child.pid ?? null,
    leftoverPids: left,
    leftoverNamespaces: leftNamespaces,
  };
  const paths = opts.out ? writeResults(opts.out, NAME, json, md) : [];
  if (opts.out) paths.push(writeChart(opts.out, NAME, chart(rows, facts)));
  process.stdout.write(`${headlineTable(rows, opts.disturbances)}\n\n${detailTable(rows)}\n`);
  const n = notes(rows, facts);
  if (n.length > 0) process.stdout.write(`\n${n.join("\n")}\n`);
  progress.log(
    paths.length > 0 ? `results: ${paths.join(", ")}` : "results: not written (a --quick run without --out)",
  );
  if (died.length > 0) {
    progress.log(`error: children died during the run: ${died.join("; ")}`);
    return 1;
  }
  return leftBehind(progress, left, leftNamespaces);
}

// Every exit path stops the children and removes the namespace (and with it the iptables
// rules): normal end, errors, Ctrl-C, SIGTERM; and a SIGKILL to any surviving child when the
// process exits at all (the fault harness deletes its namespaces on exit as well). Each child
// also exits when its stdin closes.
runBenchmark({ name: NAME, usage: USAGE, parse: parseOptions, main, cleanup, progress });
