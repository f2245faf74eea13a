/**
 * Detection watcher (a child of bench/detection.ts): a HealthEngine built as `lifeline
 * monitor` builds it (resolveConfig + defaultRegistry) in the given profile, whose targets
 * the parent adds and removes while it runs — as a hot reload would (`engine.apply`).
 *
 * It runs as a separate process so that it can run inside a network namespace (where an
 * iptables rule applies to its loopback traffic), and so that neither the parent's own work
 * (starting processes, reading their output) nor another variant's monitor stalls the
 * monitor being measured.
 *
 *   node --import tsx bench/lib/detection-watcher.ts [--profile lan|wan|classic] [--engine-per-target]
 *
 * `--engine-per-target` gives each target an engine of its own (started on `watch`, stopped
 * on `unwatch`) instead of one engine for all. For `classic` that matters: its sequential
 * loop checks the targets one after another, so a target that hangs for the 2 s timeout
 * would delay every other target's check — other trials' measurements included.
 *
 * stdin, one JSON command a line (`address` is any target address: `lifeline://h:p`,
 * `tcp://h:p`...):
 *   {"cmd":"watch","id":"kill-3","address":"lifeline://127.0.0.1:40001"}
 *   {"cmd":"unwatch","id":"kill-3"}
 * stdout, one JSON line each:
 *   {"type":"ready","pid":...,"profile":...}
 *   {"type":"state","id","from","to","at","kind","errno","reason"}   every transition; `at` is
 *       the engine's wall-clock time of the transition (Date.now(), ms), comparable with the
 *       parent's Date.now() on the same host
 *   {"type":"unwatched","id","results","passes","fails","maxGapMs","lastPassAt","watchedMs"}
 *       on unwatch: results counted for the target, the longest gap between two passing
 *       results (heartbeats, or successful connects) while it was watched, and the
 *       wall-clock time (ms) of the last passing result
 *   {"type":"tick","lag":...}   every 5 s: this process's event-loop delay (ms, max since the
 *       last tick)
 * Exits 0 on SIGTERM/SIGINT or when stdin closes (the parent has gone).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { PROFILE_NAMES, type ProfileName } from "../../src/config/profiles.ts";
import { resolveConfig } from "../../src/config/resolve.ts";
import { HealthEngine } from "../../src/health/engine.ts";
import { defaultRegistry } from "../../src/health/probes/index.ts";
import type { CheckResult, Transition } from "../../src/health/types.ts";

const write = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const { values } = parseArgs({
  options: {
    profile: { type: "string", default: "lan" },
    "engine-per-target": { type: "boolean", default: false },
  },
  strict: false, // the parent's run marker is passed too
});
const profile = String(values.profile) as ProfileName;
if (!PROFILE_NAMES.includes(profile)) {
  process.stderr.write(`detection-watcher: unknown profile ${profile}\n`);
  process.exit(2);
}
const perTarget = values["engine-per-target"] === true;

interface Watched {
  address: string;
  since: number;
  results: number;
  passes: number;
  fails: number;
  lastPass: number | undefined;
  lastPassAt: number | null;
  maxGapMs: number;
}

const registry = defaultRegistry();
const watched = new Map<string, Watched>();

function config(ids: Iterable<string>) {
  return resolveConfig(
    {
      profile,
      log: { level: "silent" },
      targets: [...ids].map((id) => ({ id, address: watched.get(id)!.address })),
    },
    registry,
  );
}

function newEngine(ids: Iterable<string>): HealthEngine {
  const engine = new HealthEngine(config(ids), { registry });
  engine.on("state", (t: Transition) => {
    write({
      type: "state",
      id: t.target,
      from: t.from,
      to: t.to,
      at: t.at,
      kind: t.kind,
      errno: t.errno,
      reason: t.reason,
    });
  });
  engine.on("result", (r: CheckResult) => {
    const w = watched.get(r.target);
    if (!w || r.spoiled || r.provisional) return;
    w.results++;
    if (r.status === "fail") {
      w.fails++;
      return;
    }
    w.passes++;
    const now = performance.now();
    if (w.lastPass !== undefined) w.maxGapMs = Math.max(w.maxGapMs, now - w.lastPass);
    w.lastPass = now;
    w.lastPassAt = r.at;
  });
  engine.start();
  return engine;
}

/** One engine for every target, or (`--engine-per-target`) one per target. */
const shared = perTarget ? undefined : newEngine([]);
const engines = new Map<string, HealthEngine>();

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
write({ type: "ready", pid: process.pid, profile, enginePerTarget: perTarget });

const ticker = setInterval(() => {
  write({ type: "tick", lag: delay.max / 1e6 });
  delay.reset();
}, 5000);

function onCommand(line: string): void {
  let cmd: { cmd?: unknown; id?: unknown; address?: unknown };
  try {
    cmd = JSON.parse(line);
  } catch {
    write({ type: "error", message: `not JSON: ${line}` });
    return;
  }
  const id = String(cmd.id);
  if (cmd.cmd === "watch") {
    if (watched.has(id)) {
      write({ type: "error", message: `already watching ${id}` });
      return;
    }
    watched.set(id, {
      address: String(cmd.address),
      since: performance.now(),
      results: 0,
      passes: 0,
      fails: 0,
      lastPass: undefined,
      lastPassAt: null,
      maxGapMs: 0,
    });
    try {
      if (shared) shared.apply(config(watched.keys()));
      else engines.set(id, newEngine([id]));
    } catch (err) {
      watched.delete(id);
      write({ type: "error", message: `cannot watch ${id}: ${(err as Error).message}` });
      return;
    }
    write({ type: "watching", id });
  } else if (cmd.cmd === "unwatch") {
    const w = watched.get(id);
    if (!w) {
      write({ type: "error", message: `not watching ${id}` });
      return;
    }
    watched.delete(id);
    if (shared) shared.apply(config(watched.keys()));
    else {
      void engines.get(id)?.stop();
      engines.delete(id);
    }
    write({
      type: "unwatched",
      id,
      results: w.results,
      passes: w.passes,
      fails: w.fails,
      maxGapMs: w.maxGapMs,
      lastPassAt: w.lastPassAt,
      watchedMs: performance.now() - w.since,
    });
  } else {
    write({ type: "error", message: `unknown command ${String(cmd.cmd)}` });
  }
}

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(ticker);
  await Promise.all([shared, ...engines.values()].map((e) => e?.stop()));
  process.exit(0);
}

const lines = createInterface({ input: process.stdin });
lines.on("line", onCommand);
lines.on("close", () => void stop());
process.stdin.on("error", () => void stop());
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
