import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

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

export interface BenchmarkRun {
  /** The benchmark's name, in messages. */
  name: string;
  /** Does the work; resolves to the exit code. */
  main: () => Promise<number>;
  /** Stops every child and removes what the run made (idempotent). */
  cleanup: () => Promise<void>;
  /** Prints a line (through the progress bar). */
  log: (line: string) => void;
  /** Called on the first signal, before cleanup: the benchmark stops starting new work. */
  onInterrupt?: () => void;
  /** Also run at process exit, after killAllSync (temporary folders...). */
  atExit?: () => void;
}

/**
 * Runs a benchmark's main with the exit paths every benchmark needs: normal end, errors,
 * Ctrl-C, SIGTERM, SIGHUP (cleanup, then exit 130/143; a second signal kills at once), and
 * a SIGKILL to any surviving child when the process exits at all. (Each child also exits
 * when its stdin closes.)
 */
export function runBenchmark(run: BenchmarkRun): void {
  let interrupted = false;
  process.on("exit", () => {
    killAllSync();
    run.atExit?.();
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    run.onInterrupt?.();
    if (++signals > 1) {
      killAllSync();
      process.exit(130);
    }
    run.log(`${run.name}: ${signal}, stopping child processes…`);
    void run.cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  run.main().then(
    (code) => {
      process.exitCode = code;
    },
    async (err: unknown) => {
      if (!interrupted) {
        run.log(`${run.name}: ${err instanceof Error ? err.message : String(err)}`);
        await run.cleanup();
        process.exit(1);
      }
    },
  );
}
