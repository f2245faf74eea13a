/**
 * probe-cost: what does monitoring N targets every interval cost the monitor?
 *
 *   npx tsx bench/probe-cost.ts [--targets N[,N...]] [--seconds S] [--interval MS] [--quick]
 *                                  [--variants lan-rst,lan-fin,classic,heartbeat] [--max-in-flight N]
 *                                  [--out DIR] [--run-id ID]
 *
 * For each target count N: a target-server child listens on N loopback ports and ignores
 * what connects (the tcp variants), and a heartbeat-server child plays N Lifeline nodes (the
 * heartbeat variant, below). Then, one after the other in the same run (so the ratios hold
 * on a noisy machine), a monitor child builds a HealthEngine as `lifeline monitor` does and
 * checks all N targets every interval for S seconds, while this process samples it from
 * outside once a second: CPU (% of one core, from /proc/PID/stat), RSS, open descriptors.
 * The monitor reports the results it counted. At the end: sockets left in TIME_WAIT on the
 * target ports, and the targets that were not healthy.
 *
 * Variants: `lan-rst` (the lan profile's tcp connect check, closing with RST), `lan-fin`
 * (the same with `close: fin`), `classic` (the seed's sequential loop), `heartbeat` (the
 * heartbeat probe, `lifeline://127.0.0.1:PORT?heartbeat=INTERVAL`: one persistent
 * connection per target, one result per heartbeat).
 *
 * The heartbeat targets: thousands of `lifeline node` processes do not fit on one machine,
 * so bench/lib/heartbeat-server.ts speaks the node side of the monitor protocol (HELLO,
 * WELCOME, TOPOLOGY, a HEARTBEAT per interval on every connection, PONG), encoded with
 * src/protocol, on up to HEARTBEAT_PORTS ports: N ≤ 1000 targets get a port each, like the
 * tcp targets; beyond that several targets (distinct ids, so distinct probes, connections
 * and detectors in the monitor) share a port. What is measured is the monitor process,
 * whose work is the same per connection whichever port it goes to; the server side of both
 * kinds is one cheap process on the same machine.
 *
 * Defaults: N=1000,10000, S=10 (1000) and 6 (10,000) measured seconds after a warm-up of 2 s
 * or more (until N results are in, at most 6 s more), interval 1000 ms: about two minutes in
 * all. `--quick`: N=100, S=3, warm-up 1 s. Prints a Markdown table on stdout and writes DIR/probe-cost.json, .md and two
 * charts, probe-cost.svg (CPU) and probe-cost-rate.svg (probes/s) (DIR: bench/results).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CommonOptions, numberArg, parseBenchArgs, pickList, UsageError } from "./lib/args.ts";
import {
  childEnv,
  guard,
  interrupted,
  leftBehind,
  leftovers,
  type NodeChild,
  repoRoot,
  runBenchmark,
  runMarker,
  spawnNode,
  stopAll,
  stopChild,
} from "./lib/children.ts";
import { type ProcSample, ProcSampler } from "./lib/proc.ts";
import { Progress } from "./lib/progress.ts";
import { markdownHeader, markdownTable, num, type RunStart, runFields, writeResults } from "./lib/report.ts";
import { timeWaitOn } from "./lib/sockets.ts";
import { barChart, writeChart } from "./lib/svg-chart.ts";

const NAME = "probe-cost";

interface Variant {
  id: string;
  title: string;
  kind: "tcp" | "heartbeat";
  profile: "lan" | "classic";
  close: "rst" | "fin";
}

/** Most ports the heartbeat server listens on; more targets share them (see above). */
const HEARTBEAT_PORTS = 1000;
/** Most seconds the warm-up goes on, past `--warmup`, waiting for every target's first result. */
const MAX_EXTRA_WARMUP = 6;
/** Descriptors a process needs besides its sockets (node, tsx, pipes, epoll...). */
const FD_MARGIN = 128;

const VARIANTS: Variant[] = [
  {
    id: "lan-rst",
    kind: "tcp",
    profile: "lan",
    close: "rst",
    title: "lan profile, tcp connect check (close rst, default)",
  },
  {
    id: "lan-fin",
    kind: "tcp",
    profile: "lan",
    close: "fin",
    title: "lan profile, tcp connect check with close: fin",
  },
  {
    id: "classic",
    kind: "tcp",
    profile: "classic",
    close: "rst",
    title: "classic profile: the seed's sequential loop (tcp connect, close rst)",
  },
  {
    id: "heartbeat",
    kind: "heartbeat",
    profile: "lan",
    close: "rst",
    title:
      "lan profile, heartbeat probe (`lifeline://127.0.0.1:PORT?heartbeat=INTERVAL`): one persistent " +
      `connection per target to bench/lib/heartbeat-server.ts (fake nodes, at most ${HEARTBEAT_PORTS} ports)`,
  },
];

const USAGE = `usage: npx tsx bench/probe-cost.ts [options]
  --targets N[,N...]  target counts to measure, each with every variant (default 1000,10000;
                      --quick 100)
  --seconds S         measured seconds per variant (default 10 at up to 1000 targets, 6 above;
                      --quick 3)
  --warmup S          seconds run before the measured window, at least (default 2; --quick 1);
                      it goes on until N results are in, at most ${MAX_EXTRA_WARMUP} s more
  --interval MS       check interval, ms (default 1000; also the heartbeat interval, >= 100)
  --quick             N=100, S=3: a smoke run (explicit --targets/--seconds still win)
  --variants LIST     comma-separated subset of: ${VARIANTS.map((v) => v.id).join(", ")}
  --max-in-flight N   monitor.maxInFlight (default: the profile's)
  --out DIR           results directory (default bench/results)
  --run-id ID         tag for this run's child processes (default: random)`;

interface Options extends CommonOptions {
  targets: number[];
  /** Undefined: the default for each target count (secondsFor). */
  seconds: number | undefined;
  warmup: number;
  interval: number;
  variants: Variant[];
  maxInFlight: number | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values, common } = parseBenchArgs(argv, USAGE, [
    "targets",
    "seconds",
    "warmup",
    "interval",
    "variants",
    "max-in-flight",
  ]);
  const quick = common.quick;
  const variants =
    values.variants === undefined
      ? VARIANTS
      : pickList("variants", values.variants, VARIANTS, { id: (v) => v.id });
  const maxInFlight = values["max-in-flight"];
  const targets =
    values.targets === undefined
      ? quick
        ? [100]
        : [1000, 10_000]
      : values.targets.split(",").map((t) => numberArg("targets", t.trim(), 0));
  const interval = numberArg("interval", values.interval, 1000, { min: 10 });
  if (interval < 100 && variants.some((v) => v.kind === "heartbeat"))
    throw new UsageError("--interval below 100 ms: a node sends heartbeats at most every 100 ms");
  return {
    ...common,
    targets,
    seconds: values.seconds === undefined ? (quick ? 3 : undefined) : numberArg("seconds", values.seconds, 1),
    warmup: numberArg("warmup", values.warmup, quick ? 1 : 2, { min: 0 }),
    interval,
    variants,
    maxInFlight: maxInFlight === undefined ? undefined : numberArg("max-in-flight", maxInFlight, 0),
  };
}

/** Measured seconds per variant at `n` targets: the full run stays around two minutes. */
function secondsFor(n: number, opts: Options): number {
  return opts.seconds ?? (n > 1000 ? 6 : 10);
}

/** The monitor's configuration for a variant: the shape of a lifeline config file. */
function monitorConfig(v: Variant, n: number, ports: number[], opts: Options): Record<string, unknown> {
  const defaults: Record<string, string> = { interval: `${opts.interval}ms` };
  // fastInterval may not exceed interval: classic's is its interval (3 s in the seed);
  // lan's 500 ms stays unless the interval is shorter.
  if (v.profile === "classic") defaults.fastInterval = `${opts.interval}ms`;
  else if (opts.interval < 500) defaults.fastInterval = `${opts.interval}ms`;
  return {
    profile: v.profile,
    log: { level: "warn" },
    defaults,
    monitor: opts.maxInFlight === undefined ? {} : { maxInFlight: opts.maxInFlight },
    targets: Array.from({ length: n }, (_, i) => {
      const id = `t${String(i + 1).padStart(5, "0")}`;
      const port = ports[i % ports.length]!;
      if (v.kind === "heartbeat")
        return { id, address: `lifeline://127.0.0.1:${port}?heartbeat=${opts.interval}` };
      const address = `127.0.0.1:${port}`;
      return v.close === "fin" ? { id, checks: [{ type: "tcp", address, close: "fin" }] } : { id, address };
    }),
  };
}

interface Tick {
  elapsed: number;
  counted: number;
  failed: number;
  inFlight: number;
  queued: number;
  lag: number;
}

interface Summary {
  elapsed: number;
  counted: number;
  passed: number;
  failed: number;
  provisional: number;
  spoiled: number;
  failures: Record<string, number>;
  states: Record<string, number>;
  notHealthy: Array<{ id: string; state: string; reason: string }>;
}

interface VariantResult {
  id: string;
  title: string;
  kind: Variant["kind"];
  profile: string;
  close: string;
  targets: number;
  /** Listening ports the targets were spread over. */
  ports: number;
  intervalMs: number;
  /** From spawning the monitor to its engine running (config of N targets loaded). */
  startupMs: number;
  warmupMin: number;
  /** Seconds run before the measured window (at least --warmup; longer until N results). */
  warmupSeconds: number;
  /** Window of probesPerSec: between two of the monitor's ticks. */
  measuredSeconds: number;
  /** The monitor's whole run (probes, failed... count over it). */
  runSeconds: number;
  probes: number;
  probesPerSec: number;
  expectedPerSec: number;
  failed: number;
  failures: Record<string, number>;
  provisional: number;
  spoiled: number;
  cpuMean: number;
  cpuMax: number;
  rssMaxMb: number;
  fdsMax: number;
  /** Monitor CPU time per counted result, µs. */
  cpuUsPerProbe: number | null;
  /** null when `ss` is not available. */
  timeWait: number | null;
  notHealthy: number;
  states: Record<string, number>;
  notHealthySample: Summary["notHealthy"];
  maxQueued: number;
  maxLagMs: number;
  /** The server's view of the rate: connections accepted (tcp) or heartbeats sent, per second. */
  serverAcceptedPerSec: number | null;
  serverHeartbeatsPerSec: number | null;
  monitorPid: number;
  monitorExit: number | string;
  monitorStderrLines: number;
  monitorStderrTail: string[];
  samples: Array<ProcSample & { probesPerSec: number | null; queued: number | null }>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

const allPids: number[] = [];
const tempDirs: string[] = [];
const progress = new Progress();

interface Server {
  kind: Variant["kind"];
  child: NodeChild;
  ports: number[];
  /** The server's last `tick`: connections accepted (tcp) or heartbeats sent so far, and
   *  when (Date.now()). */
  counter: { at: number; count: number } | undefined;
}

/** The hard limit on open descriptors (`ulimit -Hn`), from /proc/self/limits. */
function hardFdLimit(): number {
  try {
    const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    if (m) return m[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    // not Linux
  }
  return Number.POSITIVE_INFINITY;
}

/**
 * Descriptors each child needs at `n` targets: the tcp server one per port, the heartbeat
 * server one per port and one per connection, the monitor one per heartbeat connection (a
 * tcp check holds at most maxInFlight sockets: 512 in the lan profile).
 */
function fdsNeeded(n: number, opts: Options): number {
  const hb = opts.variants.some((v) => v.kind === "heartbeat");
  const tcp = opts.variants.some((v) => v.kind === "tcp");
  return (
    FD_MARGIN +
    Math.max(tcp ? n : 0, hb ? Math.min(n, HEARTBEAT_PORTS) + n : 0, tcp ? (opts.maxInFlight ?? 512) : 0)
  );
}

async function startServer(
  kind: Variant["kind"],
  count: number,
  opts: Options,
  nofile: number,
): Promise<Server> {
  let gotPorts: (ports: number[]) => void = () => {};
  const portsP = new Promise<number[]>((r) => {
    gotPorts = r;
  });
  const [name, script, args] =
    kind === "tcp"
      ? ["target-server", "bench/lib/target-server.ts", ["--count", String(count)]]
      : ["heartbeat-server", "bench/lib/heartbeat-server.ts", ["--ports", String(count)]];
  const server: Server = {
    kind,
    ports: [],
    counter: undefined,
    child: spawnNode(name, join(repoRoot, script), [...args, runMarker(opts.runId)], {
      env: childEnv(),
      nofile,
      onLine: (msg) => {
        if (msg.type === "ports") gotPorts(msg.ports as number[]);
        else if (msg.type === "tick")
          server.counter = {
            at: Date.now(),
            count: Number(kind === "tcp" ? msg.accepted : msg.heartbeats),
          };
      },
    }),
  };
  allPids.push(server.child.pid);
  server.ports = await guard(portsP, server.child, 60_000, "its ports");
  if (server.ports.length !== count) throw new Error(`${name}: wrong number of ports`);
  return server;
}

async function runVariant(
  v: Variant,
  n: number,
  label: string,
  server: Server,
  opts: Options,
  nofile: number,
): Promise<VariantResult> {
  const seconds = secondsFor(n, opts);
  const dir = mkdtempSync(join(tmpdir(), "lifeline-bench-"));
  tempDirs.push(dir);
  const file = join(dir, `${v.id}-${n}.json`);
  writeFileSync(file, JSON.stringify(monitorConfig(v, n, server.ports, opts)));
  const portSet = new Set(server.ports);
  const twBefore = timeWaitOn(portSet);

  let lastTick: Tick | undefined;
  /** The monitor's tick the measured window starts from (the last one of the warm-up, or
   *  the first after it); set once `measuring`. */
  let tickFrom: Tick | undefined;
  let measuring = false;
  let maxQueued = 0;
  let maxLag = 0;
  let onReady: () => void = () => {};
  let onSummary: (s: Summary) => void = () => {};
  const readyP = new Promise<void>((r) => {
    onReady = r;
  });
  const summaryP = new Promise<Summary>((r) => {
    onSummary = r;
  });
  progress.update(`${label} starting the monitor (${n} targets)…`);
  const mon = spawnNode(
    `monitor ${v.id}`,
    join(repoRoot, "bench/lib/monitor-child.ts"),
    [runMarker(opts.runId)],
    {
      env: childEnv({
        BENCH_MONITOR_CONFIG: file,
        // A safety net: the monitor stops itself if this process cannot stop it.
        BENCH_MONITOR_MAX_SECONDS: String(opts.warmup + MAX_EXTRA_WARMUP + seconds + 300),
      }),
      nofile,
      onLine: (msg) => {
        if (msg.type === "ready") onReady();
        else if (msg.type === "tick") {
          lastTick = msg as unknown as Tick;
          if (measuring && !tickFrom) tickFrom = lastTick;
          maxQueued = Math.max(maxQueued, lastTick.queued);
          maxLag = Math.max(maxLag, lastTick.lag);
        } else if (msg.type === "summary") onSummary(msg as unknown as Summary);
      },
    },
  );
  allPids.push(mon.pid);
  const spawnedAt = performance.now();
  await guard(readyP, mon, 120_000, "ready");
  const startupMs = performance.now() - spawnedAt;

  const sampler = new ProcSampler(mon.pid);
  const samples: VariantResult["samples"] = [];
  // Server ticks that arrive while the monitor runs give the server's view of the rate.
  // The warm-up (first checks spread over the interval, connections opened, the first
  // heartbeats awaited) is run but not measured: at least `--warmup` seconds, and until the
  // monitor has counted N results (every target checked once, about), at most
  // MAX_EXTRA_WARMUP seconds more. Rates and the mean CPU come from the monitor's and the
  // servers' counters between the end of the warm-up and the end.
  const t0 = performance.now();
  let prevTick: Tick | undefined;
  let second = 0;
  let warmup = 0;
  const step = async (what: string): Promise<void> => {
    second++;
    await sleep(t0 + second * 1000 - performance.now());
    if (interrupted()) throw new Error("interrupted");
    const s = sampler.sample();
    if (!s) throw new Error(`${mon.name} (pid ${mon.pid}) has gone:\n${mon.stderrTail.join("\n")}`);
    const tick = lastTick;
    const rate =
      tick && prevTick && tick.elapsed > prevTick.elapsed
        ? (tick.counted - prevTick.counted) / (tick.elapsed - prevTick.elapsed)
        : null;
    if (tick !== prevTick) prevTick = tick;
    samples.push({ ...s, probesPerSec: rate, queued: tick?.queued ?? null });
    progress.update(
      `${label} ${what} · ${rate === null ? "…" : num(rate)} probes/s · cpu ${num(s.cpu)}% · ` +
        `rss ${num(s.rssMb)} MB · fds ${s.fds}${tick && tick.queued > 0 ? ` · queued ${tick.queued}` : ""}`,
    );
  };
  if (opts.warmup > 0) {
    while (
      second < opts.warmup ||
      ((lastTick?.counted ?? 0) < n && second < opts.warmup + MAX_EXTRA_WARMUP)
    ) {
      await step(`warm-up ${second + 1} s`);
    }
    warmup = second;
    measuring = true;
    tickFrom = lastTick;
  }
  const acceptedFrom = server.counter;
  for (let i = 1; i <= seconds; i++) await step(`${i}/${seconds} s`);
  const acceptedTo = server.counter;
  const tickTo = lastTick;
  const serverRate =
    acceptedFrom && acceptedTo && acceptedTo.at > acceptedFrom.at
      ? ((acceptedTo.count - acceptedFrom.count) * 1000) / (acceptedTo.at - acceptedFrom.at)
      : null;

  progress.update(`${label} stopping the monitor…`);
  const summaryOrNull = Promise.race([summaryP, mon.exited.then(() => null)]);
  const exit = await stopChild(mon, "SIGTERM", 15_000);
  const summary = await summaryOrNull;
  if (!summary)
    throw new Error(`${mon.name} exited (${exit}) without a summary:\n${mon.stderrTail.join("\n")}`);

  // Closing handshakes finish within a round trip on loopback; then count what they left.
  await sleep(500);
  const twAfter = timeWaitOn(portSet);
  const timeWait =
    twBefore && twAfter ? [...twAfter].filter((s) => !twBefore.has(s)).length : twAfter ? twAfter.size : null;

  const healthy = summary.states.healthy ?? 0;
  const measured = sampler.samples.slice(warmup);
  const cpuMean =
    measured.length > 0 ? measured.reduce((sum, x) => sum + x.cpu, 0) / measured.length : sampler.meanCpu();
  const from = tickFrom ?? { elapsed: 0, counted: 0 };
  const probesPerSec =
    tickTo && tickTo.elapsed > from.elapsed + 0.5
      ? (tickTo.counted - from.counted) / (tickTo.elapsed - from.elapsed)
      : summary.counted / summary.elapsed;
  const result: VariantResult = {
    id: v.id,
    title: v.title,
    kind: v.kind,
    profile: v.profile,
    close: v.close,
    targets: n,
    ports: server.ports.length,
    intervalMs: opts.interval,
    startupMs,
    warmupSeconds: warmup,
    warmupMin: opts.warmup,
    measuredSeconds: tickTo ? tickTo.elapsed - from.elapsed : summary.elapsed,
    runSeconds: summary.elapsed,
    probes: summary.counted,
    probesPerSec,
    expectedPerSec: (n * 1000) / opts.interval,
    failed: summary.failed,
    failures: summary.failures,
    provisional: summary.provisional,
    spoiled: summary.spoiled,
    cpuMean,
    cpuMax: sampler.max("cpu"),
    rssMaxMb: sampler.max("rssMb"),
    fdsMax: sampler.max("fds"),
    cpuUsPerProbe: probesPerSec > 0 ? (cpuMean / 100 / probesPerSec) * 1e6 : null,
    timeWait,
    notHealthy: n - healthy,
    states: summary.states,
    notHealthySample: summary.notHealthy,
    maxQueued,
    maxLagMs: maxLag,
    serverAcceptedPerSec: v.kind === "tcp" ? serverRate : null,
    serverHeartbeatsPerSec: v.kind === "heartbeat" ? serverRate : null,
    monitorPid: mon.pid,
    monitorExit: exit,
    monitorStderrLines: mon.stderrLines,
    monitorStderrTail: mon.stderrTail.slice(-10),
    samples,
  };
  progress.log(
    `${label} ${num(result.probesPerSec)} probes/s (${num((100 * result.probesPerSec) / result.expectedPerSec)}% of ` +
      `${num(result.expectedPerSec)}), cpu ${num(result.cpuMean)}% mean, TIME_WAIT ${result.timeWait ?? "n/a"}, ` +
      `not healthy ${result.notHealthy}`,
  );
  return result;
}

const HEADERS = [
  "variant",
  "targets",
  "interval",
  "probes/s",
  "% of N/interval",
  "failed",
  "CPU % mean",
  "CPU % max",
  "RSS MB max",
  "fds max",
  "TIME_WAIT",
  "not healthy",
  "CPU µs/probe",
];

function table(results: VariantResult[]): string {
  return markdownTable(
    HEADERS,
    results.map((r) => [
      r.id,
      r.targets,
      `${r.intervalMs} ms`,
      num(r.probesPerSec),
      `${num((100 * r.probesPerSec) / r.expectedPerSec)}%`,
      r.failed,
      num(r.cpuMean, 1),
      num(r.cpuMax, 1),
      num(r.rssMaxMb, 1),
      r.fdsMax,
      r.timeWait ?? "n/a",
      r.notHealthy,
      num(r.cpuUsPerProbe),
    ]),
  );
}

/** The kernel's cap on TIME_WAIT sockets (beyond it they are dropped at once), or undefined. */
function maxTimeWait(): number | undefined {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/tcp_max_tw_buckets", "utf8").trim()) || undefined;
  } catch {
    return undefined;
  }
}

/** Facts worth a line below the table: failures, unhealthy targets, queueing, stderr. */
function notes(results: VariantResult[]): string[] {
  const out: string[] = [];
  const twCap = maxTimeWait();
  for (const r0 of results) {
    const r = { ...r0, id: `${r0.id} ×${r0.targets}` };
    if (twCap !== undefined && r.timeWait !== null && r.timeWait >= twCap * 0.9)
      out.push(
        `- ${r.id}: ${r.timeWait} sockets in TIME_WAIT, near the kernel's cap of ${twCap} ` +
          "(net.ipv4.tcp_max_tw_buckets): beyond it they are dropped, so this is a floor",
      );
    if (r.failed > 0) {
      const kinds = Object.entries(r.failures)
        .map(([k, n]) => `${k} ×${n}`)
        .join(", ");
      out.push(`- ${r.id}: ${r.failed} failed probes (${kinds})`);
    }
    if (r.notHealthy > 0) {
      const states = Object.entries(r.states)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ");
      const first = r.notHealthySample[0];
      out.push(
        `- ${r.id}: ${r.notHealthy} of ${r.targets} targets not healthy at the end (${states})` +
          (first ? `; e.g. ${first.id} ${first.state}: ${first.reason}` : ""),
      );
    }
    if (r.close === "rst" && r.kind === "tcp" && r.timeWait !== null && r.timeWait > 0)
      out.push(
        `- ${r.id}: ${r.timeWait} socket${r.timeWait === 1 ? "" : "s"} in TIME_WAIT despite \`close: rst\`: an aborted probe (timed out, ` +
          "or in flight when the monitor stopped) is closed with destroy(), a FIN when the kernel had " +
          "already completed the connect (src/health/probes/tcp.ts, onAbort)",
      );
    if (r.kind === "heartbeat" && r.fdsMax > 900)
      out.push(
        `- ${r.id}: the monitor held ${r.fdsMax} descriptors, one per heartbeat connection (passive checks ` +
          "take no in-flight slot): near or over the usual soft limit of 1024, a `lifeline monitor` needs `ulimit -n` " +
          "raised (this benchmark raises its children's to 20000)",
      );
    if (r.warmupSeconds > r0.warmupMin)
      out.push(`- ${r.id}: warm-up ${r.warmupSeconds} s (until about one result per target)`);
    if (r.maxQueued > 0) out.push(`- ${r.id}: up to ${r.maxQueued} probes queued for an in-flight slot`);
    if (r.spoiled > 0 || r.provisional > 0)
      out.push(`- ${r.id}: ${r.spoiled} spoiled and ${r.provisional} provisional results (not counted)`);
    if (r.monitorStderrLines > 0)
      out.push(
        `- ${r.id}: the monitor wrote ${r.monitorStderrLines} lines to stderr, e.g. ${r.monitorStderrTail[0]}`,
      );
  }
  return out;
}

/** Chart file names (without .svg), written next to the results. */
const CHARTS = { cpu: NAME, rate: `${NAME}-rate` } as const;

/** Two charts: the monitor's CPU, and the results per second it delivered. */
function charts(results: VariantResult[], opts: Options): Record<keyof typeof CHARTS, string> {
  const variants = opts.variants.filter((v) => results.some((r) => r.id === v.id));
  const series = opts.targets.map((n) => `${n.toLocaleString("en-US")} targets`);
  const groups = (value: (r: VariantResult) => number | null) =>
    variants.map((v) => ({
      label: v.id,
      values: opts.targets.map((n) => {
        const r = results.find((x) => x.id === v.id && x.targets === n);
        return r ? value(r) : null;
      }),
    }));
  const every = `every ${opts.interval} ms`;
  return {
    cpu: barChart({
      title: `Monitor CPU, checking every target ${every}`,
      unit: "CPU, % of one core (mean over the window)",
      series,
      groups: groups((r) => r.cpuMean),
      note:
        "The monitor process only (utime+stime from /proc/PID/stat). 100 % is one core: the engine runs on " +
        "one thread, so a variant near 100 % cannot keep up (see the probes/s chart).",
    }),
    rate: barChart({
      title: `Results per second (asked for: one per target ${every})`,
      unit: "probes/s",
      series,
      groups: groups((r) => r.probesPerSec),
      log: opts.targets.length > 1,
      note:
        "Counted results (neither provisional nor spoiled) over the window. The schedule asks for N × 1000 / " +
        "interval per second; less means the monitor fell behind.",
    }),
  };
}

function markdown(results: VariantResult[], opts: Options, run: RunStart): string {
  const seconds = opts.targets.map((n) => `${secondsFor(n, opts)} s at ${n}`).join(", ");
  const hbShare = opts.targets
    .filter((n) => n > HEARTBEAT_PORTS)
    .map((n) => `${n} targets share ${HEARTBEAT_PORTS} ports, ${Math.ceil(n / HEARTBEAT_PORTS)} per port`);
  const lines = [
    ...markdownHeader(run, true),
    `Measured window per variant: ${seconds}, each after a warm-up of at least ${opts.warmup} s ` +
      `(until every target has had about one result, at most ${opts.warmup + MAX_EXTRA_WARMUP} s)`,
    "",
    table(results),
    "",
    `![Monitor CPU per variant and target count](${CHARTS.cpu}.svg)`,
    "",
    `![Results per second per variant and target count](${CHARTS.rate}.svg)`,
    "",
    "Variants:",
    "",
    ...opts.variants.map((v) => `- \`${v.id}\`: ${v.title}`),
    "",
    "Columns: probes/s counts the monitor's results that were neither provisional nor spoiled, over",
    "the measured window (after the warm-up: first checks spread over the interval, connections",
    "opened); % of N/interval compares it with N × 1000 / interval; failed counts the whole run. CPU",
    "is the monitor process only (utime+stime of all its threads from /proc/PID/stat over wall time,",
    "% of one core: the mean of the one-second samples of the measured window, and the highest",
    "sample, warm-up included); RSS and descriptors are the highest one-second samples. TIME_WAIT",
    "counts sockets in TIME_WAIT on the target ports that appeared during the variant, 0.5 s after",
    "the monitor exited. not healthy: targets not `healthy` when the monitor was stopped. CPU",
    "µs/probe: the monitor's CPU time per counted result.",
    "",
    "Heartbeat targets: thousands of `lifeline node` processes do not fit on one machine, so",
    "bench/lib/heartbeat-server.ts plays the nodes. It speaks the node side of the monitor protocol",
    "with src/protocol (HELLO, WELCOME, TOPOLOGY, a HEARTBEAT every interval on each connection, as",
    "src/node/connection.ts does, PONG), so the monitor runs the real heartbeat probe over real",
    "loopback connections, one per target, and gets one result per heartbeat. The targets get a",
    `port each up to ${HEARTBEAT_PORTS}; beyond that they share ports under distinct ids, so each`,
    "still has its own probe, connection and detector in the monitor, whose work per connection",
    "does not depend on the port. The fake node's own cost (one process for all targets, like the",
    "tcp variants' target server) is not measured; it shares the machine's cores with the monitor",
    "in both kinds of variant.",
    ...(hbShare.length > 0 ? ["", `Shared ports: ${hbShare.join("; ")}.`] : []),
  ];
  const n = notes(results);
  if (n.length > 0) lines.push("", "Notes:", "", ...n);
  return `${lines.join("\n")}\n`;
}

async function cleanup(): Promise<void> {
  await stopAll(3000);
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

async function main(opts: Options, run: RunStart): Promise<number> {
  progress.log(
    `${NAME}: ${opts.targets.join(", ")} targets, ${opts.interval} ms interval, ` +
      `${opts.targets.map((n) => `${secondsFor(n, opts)} s`).join(", ")} per variant, ` +
      `variants ${opts.variants.map((v) => v.id).join(", ")} (run ${opts.runId})`,
  );
  // Every child gets its descriptor limit raised (spawnNode); a count that cannot fit under
  // the hard limit is refused up front rather than failing with EMFILE half-way.
  const hardLimit = hardFdLimit();
  for (const n of opts.targets) {
    const need = fdsNeeded(n, opts);
    if (need > hardLimit) {
      progress.log(
        `${NAME}: ${n} targets need about ${need} descriptors in one process; the hard limit ` +
          `(ulimit -Hn) is ${hardLimit}. Use fewer targets or raise the limit.`,
      );
      return 2;
    }
  }
  const results: VariantResult[] = [];
  const total = opts.targets.length * opts.variants.length;
  for (const [si, n] of opts.targets.entries()) {
    const nofile = Math.max(20_000, fdsNeeded(n, opts));
    const servers: Partial<Record<Variant["kind"], Server>> = {};
    for (const [vi, v] of opts.variants.entries()) {
      const label = `[${si * opts.variants.length + vi + 1}/${total} ${v.id} ×${n}]`;
      let server = servers[v.kind];
      if (!server) {
        const ports = v.kind === "tcp" ? n : Math.min(n, HEARTBEAT_PORTS);
        progress.update(`${label} starting the ${v.kind} server (${ports} ports)…`);
        server = await startServer(v.kind, ports, opts, nofile);
        servers[v.kind] = server;
      }
      results.push(await runVariant(v, n, label, server, opts, nofile));
    }
    progress.update("stopping the servers…");
    for (const server of Object.values(servers)) await stopChild(server.child, "SIGTERM", 5000);
  }
  await cleanup();
  progress.clear();

  // Children of this run still running: by pid, and by the run's marker (pgrep -f).
  const left = leftovers(allPids, [runMarker(opts.runId)]);
  const md = markdown(results, opts, run);
  const json = {
    ...runFields(run),
    settings: {
      targets: opts.targets,
      seconds: Object.fromEntries(opts.targets.map((n) => [n, secondsFor(n, opts)])),
      warmupSeconds: opts.warmup,
      heartbeatPorts: HEARTBEAT_PORTS,
      intervalMs: opts.interval,
      quick: opts.quick,
      maxInFlight: opts.maxInFlight ?? "profile default",
      runId: opts.runId,
    },
    childPids: allPids,
    leftoverPids: left,
    variants: results,
  };
  const paths = writeResults(opts.out, NAME, json, md);
  const svg = charts(results, opts);
  paths.push(writeChart(opts.out, CHARTS.cpu, svg.cpu), writeChart(opts.out, CHARTS.rate, svg.rate));
  process.stdout.write(`${table(results)}\n`);
  const n = notes(results);
  if (n.length > 0) process.stdout.write(`\n${n.join("\n")}\n`);
  progress.log(`results: ${paths.join(", ")}`);
  return leftBehind(progress, left);
}

runBenchmark({ name: NAME, usage: USAGE, parse: parseOptions, main, cleanup, progress });
