import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { hostInfo, type RunStart } from "./report.ts";

/** The repository root (bench/lib/ is two levels down). */
export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** Marker appended to every child's arguments, so `pgrep -f` finds exactly this run's children. */
export function runMarker(runId: string): string {
  return `--lifeline-bench-run=${runId}`;
}

export interface NodeChild {
  child: ChildProcess;
  pid: number;
  name: string;
  /** Resolves with the exit code (or the signal's name) once the process has exited and its
   *  output has been read. */
  exited: Promise<number | string>;
  /** Last lines of stderr, for error messages. */
  stderrTail: string[];
  /** Total stderr lines seen. */
  stderrLines: number;
}

const live = new Set<NodeChild>();

/** Children started by this process that have not exited yet. */
export function liveChildren(): NodeChild[] {
  return [...live];
}

/**
 * Starts `node --import tsx SCRIPT ARGS` as a child, through `bash -c 'ulimit -n ...; exec'`
 * because Node cannot raise its own descriptor limit. After the `exec` the child's pid is
 * the node process itself, so /proc/PID describes the program being measured.
 *
 * `nodeArgs` replaces `--import tsx` (`[]` for bin/lifeline.js, which registers tsx itself).
 * `wrap` is a command prefix that execs what follows in place, such as
 * `["ip", "netns", "exec", NS]`: the pid is still the node process's.
 *
 * stdin is a pipe the child may watch: it closes if this process dies, however it dies.
 * Every JSON line on stdout goes to `onLine`.
 */
export function spawnNode(
  name: string,
  script: string,
  args: string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    nofile?: number;
    onLine?: (msg: Record<string, unknown>) => void;
    nodeArgs?: string[];
    wrap?: string[];
  },
): NodeChild {
  const nofile = opts.nofile ?? 20_000;
  const cmd = `ulimit -n ${nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"`;
  const command = [...(opts.wrap ?? []), process.execPath, ...(opts.nodeArgs ?? ["--import", "tsx"])];
  const child = spawn("bash", ["-c", cmd, ...command, script, ...args], {
    cwd: repoRoot,
    env: opts.env ?? process.env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error(`cannot start ${name}`);
  const handle: NodeChild = {
    child,
    pid: child.pid,
    name,
    exited: new Promise((resolve) => {
      // "close", not "exit": by then stdout has been read to its end, last lines included.
      child.once("close", (code, signal) => {
        live.delete(handle);
        resolve(code ?? signal ?? "unknown");
      });
    }),
    stderrTail: [],
    stderrLines: 0,
  };
  live.add(handle);
  child.stdin?.on("error", () => {});
  createInterface({ input: child.stdout! }).on("line", (line) => {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (msg && typeof msg === "object") opts.onLine?.(msg as Record<string, unknown>);
  });
  createInterface({ input: child.stderr! }).on("line", (line) => {
    handle.stderrLines++;
    handle.stderrTail.push(line);
    if (handle.stderrTail.length > 20) handle.stderrTail.shift();
  });
  return handle;
}

/** The environment for a child: this one's without LIFELINE_* (which would configure the child's
 *  node or monitor behind the benchmark's back), plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("LIFELINE_")) env[k] = v;
  return { ...env, ...extra };
}

/** spawnNode's `wrap` that runs a child inside the network namespace `ns` (none: on the host). */
export function inNamespace(ns: { name: string } | undefined): { wrap?: string[] } {
  return ns ? { wrap: ["ip", "netns", "exec", ns.name] } : {};
}

/** Rejects if `child` exits before `p` settles, or after `ms`. */
export function guard<T>(p: Promise<T>, child: NodeChild, ms: number, what: string): Promise<T> {
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

/** The lifeline CLI. */
export const LIFELINE_BIN = join(repoRoot, "bin", "lifeline.js");

export interface RunningNode {
  child: NodeChild;
  port: number;
}

/**
 * Starts `lifeline node --id ID --port 0 --store STORE --app echo` (log level warn; `--admin
 * off` when `adminOff`) as `name`, on the host or in `ns`, and resolves with its port once it
 * prints its listening line. Its pid goes into `pids` at once, so that cleanup finds it even
 * if it never listens.
 */
export async function startNode(opts: {
  name: string;
  id: string;
  /** Default: memory. */
  store?: string;
  adminOff?: boolean;
  ns?: { name: string } | undefined;
  pids: number[];
}): Promise<RunningNode> {
  let gotPort: (port: number) => void = () => {};
  const portP = new Promise<number>((r) => {
    gotPort = r;
  });
  const args = ["node", "--id", opts.id, "--port", "0", "--store", opts.store ?? "memory", "--app", "echo"];
  if (opts.adminOff) args.push("--admin", "off");
  args.push("--log-level", "warn");
  const child = spawnNode(opts.name, LIFELINE_BIN, args, {
    env: childEnv(),
    nodeArgs: [], // bin/lifeline.js registers tsx itself
    ...inNamespace(opts.ns),
    onLine: (msg) => {
      if (msg.type === "listening") gotPort(Number(msg.port));
    },
  });
  opts.pids.push(child.pid);
  const port = await guard(portP, child, 60_000, "its listening line");
  return { child, port };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops a child by its pid: `signal`, then SIGKILL after `graceMs`. Resolves once it has exited. */
export async function stopChild(
  c: NodeChild,
  signal: NodeJS.Signals = "SIGTERM",
  graceMs = 5000,
): Promise<number | string> {
  if (!live.has(c)) return c.exited;
  try {
    process.kill(c.pid, signal);
  } catch {
    // already gone
  }
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      if (live.has(c)) {
        try {
          process.kill(c.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      resolve();
    }, graceMs);
  });
  await Promise.race([c.exited, killed]);
  clearTimeout(timer);
  return c.exited;
}

/** Stops every live child (SIGTERM, then SIGKILL). */
export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all(liveChildren().map((c) => stopChild(c, "SIGTERM", graceMs)));
}

/** Last resort for `process.on("exit")`, which cannot wait: SIGKILL every live child. */
export function killAllSync(): void {
  for (const c of live) {
    try {
      process.kill(c.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Pids of processes whose command line contains `pattern` (pgrep -f), other than this one. */
export function pgrep(pattern: string): number[] {
  try {
    const out = execFileSync("pgrep", ["-f", "--", pattern], { encoding: "utf8" });
    return out
      .split("\n")
      .map((s) => Number(s.trim()))
      .filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid && alive(p));
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** Of the given pids, those still running. */
export function stillRunning(pids: number[]): number[] {
  return pids.filter(alive);
}

/** A run's children still running: of `pids`, and any process whose command line contains one
 *  of `patterns` (the run's marker, its node ids...). */
export function leftovers(pids: number[], patterns: string[]): number[] {
  return [...new Set([...stillRunning(pids), ...patterns.flatMap(pgrep)])];
}

/**
 * A run's exit code by what it left behind: 0 when nothing, else 1 with an error line — "child
 * processes still running", or, with `namespaces` (a benchmark that makes network namespaces),
 * "left behind: processes …; namespaces …".
 */
export function leftBehind(
  progress: { log: (line: string) => void },
  pids: number[],
  namespaces?: string[],
): number {
  if (pids.length === 0 && (namespaces ?? []).length === 0) return 0;
  progress.log(
    namespaces === undefined
      ? `error: child processes still running: ${pids.join(", ")}`
      : `error: left behind: processes ${pids.join(", ") || "none"}; namespaces ${namespaces.join(", ") || "none"}`,
  );
  return 1;
}

let interruptedBySignal = false;

/** Whether runBenchmark has had a signal (before the cleanup it starts): the benchmark should
 *  stop starting new work. */
export function interrupted(): boolean {
  return interruptedBySignal;
}

/** What a benchmark's work throws when it stops because of a signal. */
export class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

export interface BenchmarkRun<O> {
  /** The benchmark's name (bench/NAME.ts), in messages. */
  name: string;
  /** Reads the options from the command line; throws on a bad one (a UsageError, or
   *  parseArgs's own error). */
  parse: (argv: string[]) => O;
  /** Printed after a bad command line's error (and the exit code is 2). */
  usage: string;
  /** Does the work; resolves to the exit code. */
  main: (opts: O, run: RunStart) => Promise<number>;
  /** Stops every child and removes what the run made (idempotent). */
  cleanup: () => Promise<void>;
  /** Where its lines are printed (through the progress bar). */
  progress: { log: (line: string) => void };
  /** Also run at process exit, after killAllSync (temporary folders...). */
  atExit?: () => void;
}

/**
 * Runs a benchmark's main with its options and the exit paths every benchmark needs: normal
 * end, a bad command line (its error and the usage; exit 2), errors, Ctrl-C, SIGTERM, SIGHUP
 * (cleanup, then exit 130/143; a second signal kills at once), and a SIGKILL to any surviving
 * child when the process exits at all. (Each child also exits when its stdin closes.)
 */
export function runBenchmark<O>(run: BenchmarkRun<O>): void {
  process.on("exit", () => {
    killAllSync();
    run.atExit?.();
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interruptedBySignal = true;
    if (++signals > 1) {
      killAllSync();
      process.exit(130);
    }
    run.progress.log(`${run.name}: ${signal}, stopping child processes…`);
    void run.cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  const argv = process.argv.slice(2);
  const start = async (): Promise<number> => {
    let opts: O;
    try {
      opts = run.parse(argv);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n${run.usage}\n`);
      return 2;
    }
    const command = `npx tsx bench/${run.name}.ts ${argv.join(" ")}`.trim();
    return run.main(opts, { name: run.name, command, host: hostInfo(), startedAt: new Date().toISOString() });
  };
  start().then(
    (code) => {
      process.exitCode = code;
    },
    async (err: unknown) => {
      if (!interruptedBySignal) {
        run.progress.log(`${run.name}: ${err instanceof Error ? err.message : String(err)}`);
        await run.cleanup();
        process.exit(1);
      }
    },
  );
}
