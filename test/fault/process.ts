import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { EventEmitter } from "node:events";

/**
 * Child processes for fault tests: each runs in its own process group (so it and anything it
 * starts can be signalled together, by group id only), its stdout is read as lines and JSON
 * lines, and every process started here is stopped on cleanup — also when the test run is
 * interrupted (exit, SIGINT, SIGTERM).
 */

const MAX_STDERR_LINES = 50;

export interface StartOptions {
  /** For messages: "monitor", "server". Defaults to the command. */
  name?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** "pipe" to write to the child's stdin (`handle.proc.stdin`); default "ignore". */
  stdin?: "pipe" | "ignore";
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ChildHandle {
  readonly name: string;
  readonly pid: number;
  /** Every stdout line so far. */
  readonly lines: string[] = [];
  /** Every stdout line that parsed as a JSON object, in order. */
  readonly json: Array<Record<string, unknown>> = [];
  /** The last stderr lines. */
  readonly stderr: string[] = [];
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  private readonly events = new EventEmitter();

  constructor(
    readonly proc: ChildProcess,
    name?: string,
  ) {
    proc.on("error", (err) => this.stderr.push(`spawn error: ${err.message}`));
    if (proc.pid === undefined) throw new Error(`could not start ${proc.spawnfile}`);
    this.pid = proc.pid;
    this.name = name ?? proc.spawnfile;
    this.events.setMaxListeners(0);
    this.exited = new Promise((resolve) => {
      proc.once("exit", (code, signal) => {
        this.exit = { code, signal };
        this.events.emit("change");
        resolve(this.exit);
      });
    });
    readLines(proc.stdout, (line) => {
      this.lines.push(line);
      try {
        const obj: unknown = JSON.parse(line);
        if (obj && typeof obj === "object" && !Array.isArray(obj))
          this.json.push(obj as Record<string, unknown>);
      } catch {
        // not JSON: kept in `lines` only
      }
      this.events.emit("change");
    });
    readLines(proc.stderr, (line) => {
      this.stderr.push(line);
      if (this.stderr.length > MAX_STDERR_LINES) this.stderr.shift();
    });
  }

  /**
   * Resolves with the first JSON line (from index `since`, default 0) matching `match`;
   * rejects after `timeout` ms, or when the process exits first, with the last lines seen.
   */
  waitForJson<T = Record<string, unknown>>(
    match: (obj: Record<string, unknown>) => boolean,
    opts: { timeout: number; since?: number; what?: string },
  ): Promise<T> {
    const what = opts.what ?? "a matching JSON line";
    let next = opts.since ?? 0;
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        for (; next < this.json.length; next++) {
          const obj = this.json[next]!;
          if (match(obj)) return done(() => resolve(obj as T));
        }
        if (this.exit) {
          const how = this.exit.signal ?? `code ${this.exit.code}`;
          done(() => reject(new Error(`${this.name} exited (${how}) before ${what}\n${this.tail()}`)));
        }
      };
      const timer = setTimeout(() => {
        done(() =>
          reject(new Error(`timed out after ${opts.timeout} ms waiting for ${what}\n${this.tail()}`)),
        );
      }, opts.timeout);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.events.off("change", check);
        settle();
      };
      this.events.on("change", check);
      check();
    });
  }

  /** The last stdout and stderr lines, for error messages. */
  tail(n = 15): string {
    const out = this.lines.slice(-n).map((l) => `  stdout| ${l}`);
    const err = this.stderr.slice(-n).map((l) => `  stderr| ${l}`);
    return [`last output of ${this.name} (pid ${this.pid}):`, ...out, ...err].join("\n");
  }

  /** Sends a signal to the child's process group; false if it is gone already. */
  signal(sig: NodeJS.Signals): boolean {
    if (this.exit) return false;
    return signalGroup(this.pid, sig);
  }

  kill(): boolean {
    return this.signal("SIGKILL");
  }

  pause(): boolean {
    return this.signal("SIGSTOP");
  }

  resume(): boolean {
    return this.signal("SIGCONT");
  }

  /** SIGTERM (after SIGCONT, in case it is stopped), then SIGKILL after `grace` ms. */
  async stop(grace = 2000): Promise<Exit> {
    if (!this.exit) {
      this.resume();
      this.signal("SIGTERM");
      const timer = setTimeout(() => this.kill(), grace);
      await this.exited;
      clearTimeout(timer);
    }
    // Anything the child left in its group goes too.
    signalGroup(this.pid, "SIGKILL");
    running.delete(this);
    return this.exit!;
  }
}

/** Signals a process group by its id; false when no such group exists. */
export function signalGroup(pgid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}

const running = new Set<ChildHandle>();

/** Starts a command in its own process group, stdout and stderr piped, tracked for cleanup. */
export function startProcess(cmd: string, args: readonly string[], opts: StartOptions = {}): ChildHandle {
  const spawnOpts: SpawnOptions = {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: [opts.stdin ?? "ignore", "pipe", "pipe"],
    detached: true, // own process group: signalled as a group, not hit by the terminal's Ctrl-C
  };
  const proc = spawn(cmd, args, spawnOpts);
  const handle = new ChildHandle(proc, opts.name);
  running.add(handle);
  return handle;
}

/** Stops every process started here that is still tracked. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((h) => h.stop(500)));
}

/** Synchronous last resort (exit handlers): SIGKILL every tracked process group. */
export function killAllSync(): void {
  for (const h of running) signalGroup(h.pid, "SIGKILL");
  running.clear();
}

const hooks: Array<() => void> = [];
let installed = false;

/**
 * Registers a synchronous cleanup for when the process exits or is interrupted. Hooks run
 * once, in registration order; on SIGINT/SIGTERM the signal is re-raised afterwards unless
 * someone else (the test runner) handles it.
 */
export function onExitCleanup(hook: () => void): void {
  hooks.push(hook);
  if (installed) return;
  installed = true;
  let ran = false;
  const runHooks = () => {
    if (ran) return;
    ran = true;
    for (const h of hooks) {
      try {
        h();
      } catch {
        // best effort: the next hook still runs
      }
    }
  };
  process.once("exit", runHooks);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const onSignal = () => {
      runHooks();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.once(sig, onSignal);
  }
}

onExitCleanup(killAllSync);

function readLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let buf = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    buf += chunk;
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      nl = buf.indexOf("\n");
    }
  });
  stream.on("end", () => {
    if (buf) onLine(buf);
    buf = "";
  });
}
