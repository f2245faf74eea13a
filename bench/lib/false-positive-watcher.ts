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
    "local-health-off": { type: "boolean", default: false },
  },
  strict: false, // the parent's run marker and role are passed too
});
const profile = String(values.profile) as ProfileName;
if (!PROFILE_NAMES.includes(profile)) {
  process.stderr.write(`false-positive-watcher: unknown profile ${profile}\n`);
  process.exit(2);
}
const perTarget = values["engine-per-target"] === true;
const localHealthOff = values["local-health-off"] === true;

/** Longest stall accepted, ms: a typo must not hang the process for minutes. */
const MAX_STALL_MS = 10_000;

const registry = defaultRegistry();
const addresses = new Map<string, string>();

function config(ids: Iterable<string>) {
  return resolveConfig(
    {
      profile,
      log: { level: "silent" },
      ...(localHealthOff ? { monitor: { localHealth: { enabled: false } } } : {}),
      targets: [...ids].map((id) => ({ id, address: addresses.get(id)! })),
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
  });
  engine.start();
  return engine;
}

const shared = perTarget ? undefined : newEngine([]);
const engines = new Map<string, HealthEngine>();

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
write({ type: "ready", pid: process.pid, profile, enginePerTarget: perTarget, localHealthOff });

const ticker = setInterval(() => {
  write({ type: "tick", lag: delay.max / 1e6 });
  delay.reset();
}, 5000);

/** Blocks the event loop for `ms`: nothing else in this process runs meanwhile. */
function stall(ms: number): void {
  const start = Date.now();
  const until = performance.now() + ms;
  let spins = 0;
  while (performance.now() < until) spins++;
  write({ type: "stalled", requestedMs: ms, start, end: Date.now(), spins });
}

function onCommand(line: string): void {
  let cmd: { cmd?: unknown; id?: unknown; address?: unknown; ms?: unknown };
  try {
    cmd = JSON.parse(line);
  } catch {
    write({ type: "error", message: `not JSON: ${line}` });
    return;
  }
  if (cmd.cmd === "stall") {
    const ms = Number(cmd.ms);
    if (!Number.isFinite(ms) || ms < 0 || ms > MAX_STALL_MS) {
      write({ type: "error", message: `stall: ms must be in [0, ${MAX_STALL_MS}]` });
      return;
    }
    stall(ms);
    return;
  }
  if (cmd.cmd !== "watch") {
    write({ type: "error", message: `unknown command ${String(cmd.cmd)}` });
    return;
  }
  const id = String(cmd.id);
  if (addresses.has(id)) {
    write({ type: "error", message: `already watching ${id}` });
    return;
  }
  addresses.set(id, String(cmd.address));
  try {
    if (shared) shared.apply(config(addresses.keys()));
    else engines.set(id, newEngine([id]));
  } catch (err) {
    addresses.delete(id);
    write({ type: "error", message: `cannot watch ${id}: ${(err as Error).message}` });
    return;
  }
  write({ type: "watching", id });
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
