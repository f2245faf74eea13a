import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { runMarker } from "./children.ts";

/**
 * `serf agent` children for bench/gossip-vs-serf.ts: HashiCorp's SWIM + Lifeguard
 * implementation (memberlist), as Debian's `serf` package installs it. Each agent runs with
 * `-bind 127.0.0.1:PORT -rpc-addr 127.0.0.1:RPC -node NAME [-join ...] -log-level=info` and the
 * default `lan` profile (memberlist's DefaultLANConfig), and what it decides is read from its
 * log, stamped with this process's Date.now() as each line arrives (Serf's own timestamps
 * have one-second resolution):
 *
 *   serf: EventMemberJoin: NAME ADDR         NAME is alive (joined, or back after failing)
 *   serf: EventMemberFailed: NAME ADDR       NAME is declared failed (memberlist: dead)
 *   serf: EventMemberLeave: NAME ADDR        NAME left gracefully
 *   memberlist: Suspect NAME has failed, no acks received
 *                                            a probe of NAME by this agent failed: it suspects
 *                                            NAME (logged again at each failed probe while it
 *                                            stays suspect; suspicions heard by gossip are not
 *                                            logged)
 *   memberlist: Refuting a suspect message   this agent refuted a suspicion of itself
 */

/** What the benchmark reads from a Serf log line. */
export type SerfLogEvent =
  | { kind: "join" | "failed" | "leave" | "suspect"; subject: string }
  | { kind: "refute"; what: string };

const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => SerfLogEvent]> = [
  [/serf: EventMemberJoin: (\S+)/, (m) => ({ kind: "join", subject: m[1]! })],
  [/serf: EventMemberFailed: (\S+)/, (m) => ({ kind: "failed", subject: m[1]! })],
  [/serf: EventMemberLeave: (\S+)/, (m) => ({ kind: "leave", subject: m[1]! })],
  [/memberlist: Suspect (\S+) has failed, no acks received/, (m) => ({ kind: "suspect", subject: m[1]! })],
  [/memberlist: Refuting an? (\S+) message/, (m) => ({ kind: "refute", what: m[1]! })],
];

/** The benchmark's reading of one Serf log line, or undefined for lines it ignores. */
export function parseSerfLine(line: string): SerfLogEvent | undefined {
  for (const [re, make] of PATTERNS) {
    const m = re.exec(line);
    if (m) return make(m);
  }
  return undefined;
}

/** Why Serf cannot run here (not installed), or undefined with its version line. */
export function serfVersion(): { version?: string; missing?: string } {
  const r = spawnSync("serf", ["version"], { encoding: "utf8", timeout: 10_000 });
  if (r.error || r.status !== 0)
    return { missing: "serf is not installed (Debian package `serf`: apt-get install serf)" };
  return { version: r.stdout.split("\n")[0]!.trim() };
}

const live = new Set<SerfProcess>();

export interface SerfProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  exited: Promise<number | string>;
  stderrTail: string[];
}

/**
 * Starts `serf agent` (inside the namespace `ns` when given: `ip netns exec` execs it in place,
 * so the pid is serf's own). Its command line carries the run marker as a tag value
 * (`-tag=bench=--lifeline-bench-run=ID`), so `pgrep -f` finds it like the other children.
 */
export function startSerf(opts: {
  name: string;
  port: number;
  rpcPort: number;
  seeds: string[];
  runId: string;
  ns: { name: string } | undefined;
  onEvent: (e: SerfLogEvent, at: number) => void;
}): SerfProcess {
  const args = [
    "agent",
    `-bind=127.0.0.1:${opts.port}`,
    `-rpc-addr=127.0.0.1:${opts.rpcPort}`,
    `-node=${opts.name}`,
    "-log-level=info",
    ...opts.seeds.map((s) => `-join=${s}`),
    `-tag=bench=${runMarker(opts.runId)}`,
  ];
  const [cmd, argv] = opts.ns ? ["ip", ["netns", "exec", opts.ns.name, "serf", ...args]] : ["serf", args];
  const child = spawn(cmd, argv as string[], { stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) throw new Error(`cannot start serf agent ${opts.name}`);
  const proc: SerfProcess = {
    name: opts.name,
    pid: child.pid,
    child,
    stderrTail: [],
    exited: new Promise((resolve) => {
      child.once("close", (code, signal) => {
        live.delete(proc);
        resolve(code ?? signal ?? "unknown");
      });
    }),
  };
  live.add(proc);
  const onLine = (line: string) => {
    const at = Date.now();
    const e = parseSerfLine(line);
    if (e) opts.onEvent(e, at);
    else if (/\[(ERR|WARN)\]|rror/.test(line)) {
      proc.stderrTail.push(line.trim());
      if (proc.stderrTail.length > 10) proc.stderrTail.shift();
    }
  };
  createInterface({ input: child.stdout! }).on("line", onLine);
  createInterface({ input: child.stderr! }).on("line", onLine);
  return proc;
}

/** SIGKILLs a Serf agent and resolves once it has exited (at most 5 s). */
export async function killSerf(p: SerfProcess): Promise<void> {
  if (!live.has(p)) return;
  try {
    process.kill(p.pid, "SIGKILL");
  } catch {
    // already gone
  }
  await Promise.race([p.exited, new Promise((r) => setTimeout(r, 5000))]);
}

/** Every Serf agent still running: SIGKILLed, waited for. */
export async function killAllSerf(): Promise<void> {
  await Promise.all([...live].map(killSerf));
}

/** For `process.on("exit")`, which cannot wait. */
export function killAllSerfSync(): void {
  for (const p of live) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
