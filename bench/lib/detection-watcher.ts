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
import type { CheckResult } from "../../src/health/types.ts";
import { type Command, serveCommands, WatchedEngines, watcherArgs, write } from "./watcher-engines.ts";

const { profile, perTarget } = watcherArgs("detection-watcher", {});

interface Watched {
  since: number;
  results: number;
  passes: number;
  fails: number;
  lastPass: number | undefined;
  lastPassAt: number | null;
  maxGapMs: number;
}

const watched = new Map<string, Watched>();

const engines = new WatchedEngines(profile, perTarget, {}, (r: CheckResult) => {
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

function unwatch(cmd: Command): void {
  const id = String(cmd.id);
  const w = watched.get(id);
  if (!w) {
    write({ type: "error", message: `not watching ${id}` });
    return;
  }
  watched.delete(id);
  engines.remove(id);
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
}

serveCommands({
  engines,
  ready: { profile, enginePerTarget: perTarget },
  onWatch: (id) =>
    watched.set(id, {
      since: performance.now(),
      results: 0,
      passes: 0,
      fails: 0,
      lastPass: undefined,
      lastPassAt: null,
      maxGapMs: 0,
    }),
  onCommand: (cmd) => {
    if (cmd.cmd !== "unwatch") return false;
    unwatch(cmd);
    return true;
  },
});
