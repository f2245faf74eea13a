/**
 * monitor-scale: what does monitoring N targets every interval cost the monitor?
 *
 *   npx tsx bench/monitor-scale.ts [--targets N] [--seconds S] [--interval MS] [--quick]
 *                                  [--variants lan-rst,lan-fin,classic] [--max-in-flight N]
 *                                  [--out DIR] [--run-id ID]
 *
 * A target-server child listens on N loopback ports and ignores what connects. Then, one
 * after the other in the same run (so the ratios hold on a noisy machine), a monitor child
 * builds a HealthEngine as `lifeline monitor` does and checks all N targets every interval
 * for S seconds, while this process samples it from outside once a second: CPU (% of one
 * core, from /proc/PID/stat), RSS, open descriptors. The monitor reports the results it
 * counted. At the end: sockets left in TIME_WAIT on the target ports, and the targets that
 * were not healthy.
 *
 * Variants: `lan-rst` (the lan profile's tcp connect check, closing with RST), `lan-fin`
 * (the same with `close: fin`), `classic` (the seed's sequential loop).
 *
 * Defaults: N=1000, S=60, interval 1000 ms; `--quick`: N=100, S=5. Prints a Markdown table
 * on stdout and writes DIR/monitor-scale.json and .md (DIR: bench/results).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
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
import { type ProcSample, ProcSampler } from "./lib/proc.ts";
import { Progress } from "./lib/progress.ts";
import { hostInfo, markdownTable, num, writeResults } from "./lib/report.ts";
import { timeWaitOn } from "./lib/sockets.ts";

const NAME = "monitor-scale";

interface Variant {
  id: string;
  title: string;
  profile: "lan" | "classic";
  close: "rst" | "fin";
}

const VARIANTS: Variant[] = [
  {
    id: "lan-rst",
    profile: "lan",
    close: "rst",
    title: "lan profile, tcp connect check (close rst, default)",
  },
  { id: "lan-fin", profile: "lan", close: "fin", title: "lan profile, tcp connect check with close: fin" },
  {
    id: "classic",
    profile: "classic",
    close: "rst",
    title: "classic profile: the seed's sequential loop (tcp connect, close rst)",
  },
];

const USAGE = `usage: npx tsx bench/monitor-scale.ts [options]
  --targets N         targets to monitor (default 1000; --quick 100)
  --seconds S         measured seconds per variant (default 60; --quick 5)
  --interval MS       check interval, ms (default 1000)
  --quick             N=100, S=5: a smoke run (explicit --targets/--seconds still win)
  --variants LIST     comma-separated subset of: ${VARIANTS.map((v) => v.id).join(", ")}
  --max-in-flight N   monitor.maxInFlight (default: the profile's)
  --out DIR           results directory (default bench/results)
  --run-id ID         tag for this run's child processes (default: random)`;

class UsageError extends Error {}

interface Options {
  targets: number;
  seconds: number;
  interval: number;
  quick: boolean;
  variants: Variant[];
  maxInFlight: number | undefined;
  out: string;
  runId: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      targets: { type: "string" },
      seconds: { type: "string" },
      interval: { type: "string" },
      quick: { type: "boolean", default: false },
      variants: { type: "string" },
      "max-in-flight": { type: "string" },
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
  const quick = values.quick === true;
  let variants = VARIANTS;
  if (values.variants !== undefined) {
    const ids = values.variants.split(",").map((s) => s.trim());
    const unknown = ids.filter((id) => !VARIANTS.some((v) => v.id === id));
    if (unknown.length > 0 || ids.length === 0)
      throw new UsageError(`--variants: unknown ${unknown.join(", ")} (known: ${VARIANTS.map((v) => v.id)})`);
    variants = VARIANTS.filter((v) => ids.includes(v.id));
  }
  const maxInFlight = values["max-in-flight"];
  return {
    targets: int("targets", values.targets, quick ? 100 : 1000),
    seconds: int("seconds", values.seconds, quick ? 5 : 60),
    interval: int("interval", values.interval, 1000, 10),
    quick,
    variants,
    maxInFlight: maxInFlight === undefined ? undefined : int("max-in-flight", maxInFlight, 0),
    out: resolve(values.out ?? join(repoRoot, "bench", "results")),
    runId: values["run-id"] ?? randomUUID().slice(0, 8),
  };
}

/** The monitor's configuration for a variant: the shape of a lifeline config file. */
function monitorConfig(v: Variant, ports: number[], opts: Options): Record<string, unknown> {
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
    targets: ports.map((port, i) => {
      const id = `t${String(i + 1).padStart(5, "0")}`;
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
  profile: string;
  close: string;
  targets: number;
  intervalMs: number;
  measuredSeconds: number;
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
  /** null when `ss` is not available. */
  timeWait: number | null;
  notHealthy: number;
  states: Record<string, number>;
  notHealthySample: Summary["notHealthy"];
  maxQueued: number;
  maxLagMs: number;
  serverAcceptedPerSec: number | null;
  monitorPid: number;
  monitorExit: number | string;
  monitorStderrLines: number;
  monitorStderrTail: string[];
  samples: Array<ProcSample & { probesPerSec: number | null; queued: number | null }>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

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

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("LIFELINE_")) env[k] = v;
  return { ...env, ...extra };
}

const allPids: number[] = [];
const tempDirs: string[] = [];
const progress = new Progress();
let interrupted = false;

interface Server {
  child: NodeChild;
  ports: number[];
  /** The target server's last `tick`: connections accepted so far, and when (Date.now()). */
  accepted: { at: number; count: number } | undefined;
}

async function startServer(opts: Options): Promise<Server> {
  let gotPorts: (ports: number[]) => void = () => {};
  const portsP = new Promise<number[]>((r) => {
    gotPorts = r;
  });
  const server: Server = {
    ports: [],
    accepted: undefined,
    child: spawnNode(
      "target-server",
      join(repoRoot, "bench/lib/target-server.ts"),
      ["--count", String(opts.targets), runMarker(opts.runId)],
      {
        env: childEnv({}),
        onLine: (msg) => {
          if (msg.type === "ports") gotPorts(msg.ports as number[]);
          else if (msg.type === "tick") server.accepted = { at: Date.now(), count: Number(msg.accepted) };
        },
      },
    ),
  };
  allPids.push(server.child.pid);
  server.ports = await guard(portsP, server.child, 60_000, "its ports");
  if (server.ports.length !== opts.targets) throw new Error("target-server: wrong number of ports");
  return server;
}

async function runVariant(v: Variant, index: number, server: Server, opts: Options): Promise<VariantResult> {
  const label = `[${index + 1}/${opts.variants.length} ${v.id}]`;
  const dir = mkdtempSync(join(tmpdir(), "lifeline-bench-"));
  tempDirs.push(dir);
  const file = join(dir, `${v.id}.json`);
  writeFileSync(file, JSON.stringify(monitorConfig(v, server.ports, opts)));
  const portSet = new Set(server.ports);
  const twBefore = timeWaitOn(portSet);

  let lastTick: Tick | undefined;
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
  progress.update(`${label} starting the monitor (${opts.targets} targets)…`);
  const mon = spawnNode(
    `monitor ${v.id}`,
    join(repoRoot, "bench/lib/monitor-child.ts"),
    [runMarker(opts.runId)],
    {
      env: childEnv({
        BENCH_MONITOR_CONFIG: file,
        // A safety net: the monitor stops itself if this process cannot stop it.
        BENCH_MONITOR_MAX_SECONDS: String(opts.seconds + 300),
      }),
      onLine: (msg) => {
        if (msg.type === "ready") onReady();
        else if (msg.type === "tick") {
          lastTick = msg as unknown as Tick;
          maxQueued = Math.max(maxQueued, lastTick.queued);
          maxLag = Math.max(maxLag, lastTick.lag);
        } else if (msg.type === "summary") onSummary(msg as unknown as Summary);
      },
    },
  );
  allPids.push(mon.pid);
  await guard(readyP, mon, 120_000, "ready");

  const sampler = new ProcSampler(mon.pid);
  const samples: VariantResult["samples"] = [];
  // Server ticks that arrive while the monitor runs give the server's view of the rate.
  let acceptedFrom: Server["accepted"];
  const t0 = performance.now();
  let prevTick: Tick | undefined;
  for (let i = 1; i <= opts.seconds; i++) {
    await sleep(t0 + i * 1000 - performance.now());
    if (interrupted) throw new Error("interrupted");
    if (i === 1) acceptedFrom = server.accepted;
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
      `${label} ${i}/${opts.seconds} s · ${rate === null ? "…" : num(rate)} probes/s · cpu ${num(s.cpu)}% · ` +
        `rss ${num(s.rssMb)} MB · fds ${s.fds}${tick && tick.queued > 0 ? ` · queued ${tick.queued}` : ""}`,
    );
  }
  const acceptedTo = server.accepted;
  const serverAcceptedPerSec =
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
  const result: VariantResult = {
    id: v.id,
    title: v.title,
    profile: v.profile,
    close: v.close,
    targets: opts.targets,
    intervalMs: opts.interval,
    measuredSeconds: summary.elapsed,
    probes: summary.counted,
    probesPerSec: summary.counted / summary.elapsed,
    expectedPerSec: (opts.targets * 1000) / opts.interval,
    failed: summary.failed,
    failures: summary.failures,
    provisional: summary.provisional,
    spoiled: summary.spoiled,
    cpuMean: sampler.meanCpu(),
    cpuMax: sampler.max("cpu"),
    rssMaxMb: sampler.max("rssMb"),
    fdsMax: sampler.max("fds"),
    timeWait,
    notHealthy: opts.targets - healthy,
    states: summary.states,
    notHealthySample: summary.notHealthy,
    maxQueued,
    maxLagMs: maxLag,
    serverAcceptedPerSec,
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
    ]),
  );
}

/** Facts worth a line below the table: failures, unhealthy targets, queueing, stderr. */
function notes(results: VariantResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
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

function markdown(
  results: VariantResult[],
  opts: Options,
  command: string,
  host: Record<string, unknown>,
): string {
  const lines = [
    `# ${NAME}`,
    "",
    `Command: \`${command}\`  `,
    `Date: ${new Date().toISOString()}  `,
    `Host: node ${host.node}, ${host.platform}, ${host.cpus} CPUs (${host.cpuModel}), load ${JSON.stringify(host.loadavg)}`,
    "",
    table(results),
    "",
    "Variants:",
    "",
    ...opts.variants.map((v) => `- \`${v.id}\`: ${v.title}`),
    "",
    "Columns: probes/s counts the monitor's results that were neither provisional nor spoiled, over",
    "the measured window; % of N/interval compares it with N × 1000 / interval. CPU is the monitor",
    "process only (utime+stime of all its threads from /proc/PID/stat over wall time, % of one core,",
    "mean over the window and the highest one-second sample); RSS and descriptors are the highest",
    "one-second samples. TIME_WAIT counts sockets in TIME_WAIT on the target ports that appeared",
    "during the variant, 0.5 s after the monitor exited. not healthy: targets not `healthy` when the",
    "monitor was stopped.",
  ];
  const n = notes(results);
  if (n.length > 0) lines.push("", "Notes:", "", ...n);
  return `${lines.join("\n")}\n`;
}

async function cleanup(): Promise<void> {
  await stopAll(3000);
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Children of this run still running: by pid, and by the run's marker (pgrep -f). */
function leftovers(runId: string): number[] {
  return [...new Set([...stillRunning(allPids), ...pgrep(runMarker(runId))])];
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
  progress.log(
    `${NAME}: ${opts.targets} targets, ${opts.interval} ms interval, ${opts.seconds} s per variant, ` +
      `variants ${opts.variants.map((v) => v.id).join(", ")} (run ${opts.runId})`,
  );
  const results: VariantResult[] = [];
  progress.update(`starting the target server (${opts.targets} ports)…`);
  const server = await startServer(opts);
  for (const [i, v] of opts.variants.entries()) results.push(await runVariant(v, i, server, opts));
  progress.update("stopping the target server…");
  await stopChild(server.child, "SIGTERM", 5000);
  await cleanup();
  progress.clear();

  const left = leftovers(opts.runId);
  const md = markdown(results, opts, command, host);
  const json = {
    bench: NAME,
    command,
    startedAt,
    finishedAt: new Date().toISOString(),
    host,
    loadavgAtEnd: hostInfo().loadavg,
    settings: {
      targets: opts.targets,
      seconds: opts.seconds,
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
  process.stdout.write(`${table(results)}\n`);
  const n = notes(results);
  if (n.length > 0) process.stdout.write(`\n${n.join("\n")}\n`);
  progress.log(`results: ${paths.join(", ")}`);
  if (left.length > 0) {
    progress.log(`error: child processes still running: ${left.join(", ")}`);
    return 1;
  }
  return 0;
}

// Every exit path stops the children: normal end, errors, Ctrl-C, SIGTERM; and a SIGKILL to
// any survivor when the process exits at all. (Each child also exits when its stdin closes.)
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
