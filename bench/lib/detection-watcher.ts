/**
 * Heartbeat watcher (a child of bench/heartbeat-detection.ts): one HealthEngine, built as
 * `lifeline monitor` builds it (resolveConfig + defaultRegistry, default `lan` profile,
 * targets `lifeline://host:port` with the heartbeat probe's defaults), whose targets the
 * parent adds and removes while it runs — as a hot reload would (`engine.apply`).
 *
 * It runs as a separate process so that it can run inside a network namespace (where an
 * iptables DROP applies to its loopback traffic), and so that the parent's own work
 * (starting processes, reading their output) never stalls the monitor being measured.
 *
 *   node --import tsx bench/lib/heartbeat-watcher.ts
 *
 * stdin, one JSON command a line:
 *   {"cmd":"watch","id":"kill-3","address":"127.0.0.1:40001"}
 *   {"cmd":"unwatch","id":"kill-3"}
 * stdout, one JSON line each:
 *   {"type":"ready","pid":...}
 *   {"type":"state","id","from","to","at","kind","errno","reason"}   every transition; `at` is
 *       the engine's wall-clock time of the transition (Date.now(), ms), comparable with the
 *       parent's Date.now() on the same host
 *   {"type":"unwatched","id","results","passes","fails","maxGapMs","lastPassAt","watchedMs"}
 *       on unwatch: results counted for the target, the longest gap between two passing
 *       results (heartbeats) while it was watched, and the wall-clock time (ms) of the last
 *       passing result
 *   {"type":"tick","lag":...}   every 5 s: the engine's own event-loop lag (ms, max of 10 s)
 * Exits 0 on SIGTERM/SIGINT or when stdin closes (the parent has gone).
 */
import { createInterface } from "node:readline";
import { resolveConfig } from "../../src/config/resolve.ts";
import { HealthEngine } from "../../src/health/engine.ts";
import { defaultRegistry } from "../../src/health/probes/index.ts";
import type { CheckResult, Transition } from "../../src/health/types.ts";

const write = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);

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

function config() {
  return resolveConfig(
    {
      log: { level: "silent" },
      targets: [...watched].map(([id, w]) => ({ id, address: `lifeline://${w.address}` })),
    },
    registry,
  );
}

const engine = new HealthEngine(config(), { registry });
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
write({ type: "ready", pid: process.pid });

const ticker = setInterval(() => write({ type: "tick", lag: engine.load().lag }), 5000);

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
    engine.apply(config());
    write({ type: "watching", id });
  } else if (cmd.cmd === "unwatch") {
    const w = watched.get(id);
    if (!w) {
      write({ type: "error", message: `not watching ${id}` });
      return;
    }
    watched.delete(id);
    engine.apply(config());
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
  await engine.stop();
  process.exit(0);
}

const lines = createInterface({ input: process.stdin });
lines.on("line", onCommand);
lines.on("close", () => void stop());
process.stdin.on("error", () => void stop());
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
