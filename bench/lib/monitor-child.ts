/**
 * Benchmark monitor (a child of bench/probe-cost.ts): builds a HealthEngine exactly as
 * `lifeline monitor` does (src/cli/monitor.ts: default registry, loadConfig from a file
 * plus LIFELINE_* environment, a logger at the configured level) and runs it.
 *
 *   BENCH_MONITOR_CONFIG=/tmp/x/config.json node --import tsx bench/lib/monitor-child.ts
 *
 * Stdout, one JSON line each: `ready` once the engine has started, `tick` every second
 * (results so far), and on SIGTERM/SIGINT (or stdin closing) a `summary` with the counts
 * and the targets' final states, before exiting 0.
 *
 * Counted results are the ones that are neither provisional (a timeout recorded while a
 * patient attempt goes on) nor spoiled (discarded for the monitor's own stall).
 */
import { loadConfig } from "../../src/config/load.ts";
import { HealthEngine } from "../../src/health/engine.ts";
import { defaultRegistry } from "../../src/health/probes/index.ts";
import type { CheckResult } from "../../src/health/types.ts";
import { createLogger } from "../../src/util/logger.ts";

const file = process.env.BENCH_MONITOR_CONFIG;
if (!file) {
  process.stderr.write("monitor-child: set BENCH_MONITOR_CONFIG to a config file\n");
  process.exit(2);
}
const maxSeconds = Number(process.env.BENCH_MONITOR_MAX_SECONDS ?? "0");

const write = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const registry = defaultRegistry();
const loaded = loadConfig({ registry, file, env: process.env, flags: {}, targets: [] });
const logger = createLogger(loaded.config.log.level);
const engine = new HealthEngine(loaded.config, { registry, logger });

const counts = { counted: 0, passed: 0, failed: 0, provisional: 0, spoiled: 0 };
const failures: Record<string, number> = {};
engine.on("result", (r: CheckResult) => {
  if (r.provisional) counts.provisional++;
  else if (r.spoiled) counts.spoiled++;
  else {
    counts.counted++;
    if (r.status === "fail") {
      counts.failed++;
      const key = r.errno ?? r.kind ?? "fail";
      failures[key] = (failures[key] ?? 0) + 1;
    } else counts.passed++;
  }
});

const started = performance.now();
engine.start();
write({
  type: "ready",
  pid: process.pid,
  profile: loaded.config.profile,
  scheduling: loaded.config.monitor.scheduling,
  maxInFlight: loaded.config.monitor.maxInFlight,
  targets: engine.ids().length,
});
const ticker = setInterval(() => {
  write({ type: "tick", elapsed: (performance.now() - started) / 1000, ...counts, ...engine.load() });
}, 1000);
const deadline =
  maxSeconds > 0 ? setTimeout(() => void stop("max-seconds"), maxSeconds * 1000).unref() : undefined;

let stopping = false;
async function stop(why: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  const elapsed = (performance.now() - started) / 1000;
  const final = { ...counts }; // results counted up to the stop request
  clearInterval(ticker);
  clearTimeout(deadline);
  const states: Record<string, number> = {};
  const notHealthy: Array<{ id: string; state: string; reason: string }> = [];
  for (const t of engine.snapshot()) {
    states[t.state] = (states[t.state] ?? 0) + 1;
    if (t.state !== "healthy" && notHealthy.length < 20)
      notHealthy.push({ id: t.id, state: t.state, reason: t.reason });
  }
  const load = engine.load();
  await engine.stop();
  write({ type: "summary", why, elapsed, ...final, failures, states, notHealthy, load });
  process.exit(0);
}

process.on("SIGTERM", () => void stop("SIGTERM"));
process.on("SIGINT", () => void stop("SIGINT"));
process.stdin.on("end", () => void stop("stdin closed"));
process.stdin.on("error", () => void stop("stdin error"));
process.stdin.resume();
