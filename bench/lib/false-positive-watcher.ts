/**
 * False-positive watcher (a child of bench/false-positives.ts): a HealthEngine built as
 * `lifeline monitor` builds it (resolveConfig + defaultRegistry) in the given profile, whose
 * targets the parent adds while it runs (as a hot reload would, `engine.apply`), and which
 * the parent can make stall: a `stall` command blocks this process's event loop with a busy
 * loop for the given time, as a long synchronous task or a GC pause would.
 *
 *   node --import tsx bench/lib/false-positive-watcher.ts [--profile lan|wan|classic] [--engine-per-target]
 *                                                          [--local-health-off]
 *
 * `--engine-per-target` gives each target an engine of its own instead of one for all (for
 * `classic`, whose sequential loop would otherwise let one slow target delay the others).
 * `--local-health-off` sets `monitor.localHealth.enabled: false` (stalls are then neither
 * measured nor discounted), for a counterfactual.
 *
 * stdin, one JSON command a line:
 *   {"cmd":"watch","id":"loss-1","address":"lifeline://127.0.0.1:40001"}
 *   {"cmd":"stall","ms":800}
 * stdout, one JSON line each:
 *   {"type":"ready","pid","profile","enginePerTarget"}
 *   {"type":"watching","id"}
 *   {"type":"state","id","from","to","at","kind","errno","reason"}  every transition (`at`: the
 *       engine's wall-clock ms, comparable with the parent's Date.now() on the same host)
 *   {"type":"result","id","at","status","kind","provisional","spoiled","late","latency"}
 *       every result the engine records (`spoiled`: not counted, the monitor's own fault)
 *   {"type":"stalled","requestedMs","start","end"}  after a stall (wall-clock ms)
 *   {"type":"tick","lag"}  every 5 s: the largest event-loop delay since the last tick, ms
 *   {"type":"error","message"}
 * Exits 0 on SIGTERM/SIGINT or when stdin closes (the parent has gone).
 */
import type { CheckResult } from "../../src/health/types.ts";
import { serveCommands, WatchedEngines, watcherArgs, write } from "./watcher-engines.ts";

// The parent's run marker and role are passed too (watcherArgs is not strict).
const { profile, perTarget, values } = watcherArgs("false-positive-watcher", {
  "local-health-off": { type: "boolean", default: false },
});
const localHealthOff = values["local-health-off"] === true;

/** Longest stall accepted, ms: a typo must not hang the process for minutes. */
const MAX_STALL_MS = 10_000;

const engines = new WatchedEngines(
  profile,
  perTarget,
  localHealthOff ? { monitor: { localHealth: { enabled: false } } } : {},
  (r: CheckResult) => {
    write({
      type: "result",
      id: r.target,
      at: r.at,
      status: r.status,
      kind: r.kind,
      provisional: r.provisional === true,
      spoiled: r.spoiled ?? null,
      late: r.late === true,
      latency: Math.round(r.latency),
    });
  },
);

/** Blocks the event loop for `ms`: nothing else in this process runs meanwhile. */
function stall(ms: number): void {
  const start = Date.now();
  const until = performance.now() + ms;
  let spins = 0;
  while (performance.now() < until) spins++;
  write({ type: "stalled", requestedMs: ms, start, end: Date.now(), spins });
}

serveCommands({
  engines,
  ready: { profile, enginePerTarget: perTarget, localHealthOff },
  onCommand: (cmd) => {
    if (cmd.cmd !== "stall") return false;
    const ms = Number(cmd.ms);
    if (!Number.isFinite(ms) || ms < 0 || ms > MAX_STALL_MS)
      write({ type: "error", message: `stall: ms must be in [0, ${MAX_STALL_MS}]` });
    else stall(ms);
    return true;
  },
});
