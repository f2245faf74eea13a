import { type ChildProcess, spawn as nodeSpawn, type SpawnOptions } from "node:child_process";
import type { Clock, Timer } from "../util/clock.ts";
import { HookError } from "./errors.ts";
import { type Notification, notificationEnv } from "./notification.ts";
import type { CommandHookConfig } from "./schema.ts";

/**
 * The command hook: runs the hook's program once per notification, with the change in
 * LIFELINE_* environment variables (see `notificationEnv`) and the notification's JSON (one
 * line) on stdin. The child runs in its own process group; at the timeout (and when the
 * dispatcher stops) the whole group gets SIGKILL, so a shell and whatever it started go
 * together. Exit 0 is success; anything else is an `LL_HOOK_EXIT` error. A command is not
 * retried: it may have done half its work, and only it knows whether running again is safe.
 */

export type SpawnFn = (file: string, args: readonly string[], options: SpawnOptions) => ChildProcess;

/** Bytes of stdout and of stderr kept (for the debug log), each. */
export const OUTPUT_LIMIT = 4096;
/** After the exit, how long to wait for the output pipes to close, ms (a background process the
 *  command left behind may hold them open for ever). */
const PIPE_GRACE = 200;

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Some output was beyond `OUTPUT_LIMIT` and not kept. */
  truncated: boolean;
  /** ms from spawn to exit. */
  duration: number;
}

export interface CommandDeps {
  clock: Clock;
  spawn?: SpawnFn;
}

/** The program and its arguments: argv as given, or `/bin/sh -c STRING`. */
export function commandArgv(command: CommandHookConfig["command"]): [string, string[]] {
  return typeof command === "string" ? ["/bin/sh", ["-c", command]] : [command[0]!, command.slice(1)];
}

/** Kills the child's whole process group; the group may already be gone. */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}

/**
 * Runs the command for one notification. Resolves with the result on exit 0; rejects with a
 * `HookError` (LL_HOOK_SPAWN, LL_HOOK_EXIT with `result`, LL_HOOK_TIMEOUT, LL_HOOK_STOPPED).
 */
export function runCommand(
  hook: CommandHookConfig,
  n: Notification,
  deps: CommandDeps,
  signal: AbortSignal,
): Promise<CommandResult> {
  const { clock } = deps;
  const spawn = deps.spawn ?? (nodeSpawn as SpawnFn);
  const [file, args] = commandArgv(hook.command);
  return new Promise<CommandResult>((resolve, reject) => {
    const started = clock.now();
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[], bytes: { stdout: 0, stderr: 0 } };
    let truncated = false;
    let settled = false;
    let child: ChildProcess | undefined;
    let timer: Timer | undefined;
    let grace: Timer | undefined;

    const result = (code: number | null, sig: NodeJS.Signals | null): CommandResult => ({
      code,
      signal: sig,
      stdout: Buffer.concat(out.stdout).toString("utf8"),
      stderr: Buffer.concat(out.stderr).toString("utf8"),
      truncated,
      duration: clock.now() - started,
    });
    const finish = (err: HookError | undefined, value?: CommandResult) => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      grace?.cancel();
      signal.removeEventListener("abort", onAbort);
      child?.stdout?.destroy();
      child?.stderr?.destroy();
      child?.stdin?.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const onAbort = () => {
      if (child) killGroup(child);
      finish(new HookError("LL_HOOK_STOPPED", `${hook.name}: stopped before ${file} exited`));
    };
    if (signal.aborted) return onAbort();

    try {
      child = spawn(file, args, {
        ...(hook.cwd !== undefined ? { cwd: hook.cwd } : {}),
        env: { ...process.env, ...hook.env, ...notificationEnv(n, hook.name) },
        detached: true, // its own process group, killed as one
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (err) {
      return finish(spawnError(hook.name, file, err));
    }
    const proc = child;
    signal.addEventListener("abort", onAbort, { once: true });
    timer = clock.timeout(hook.timeout, () => {
      killGroup(proc);
      finish(
        new CommandHookError(
          "LL_HOOK_TIMEOUT",
          `${hook.name}: ${file} killed after ${hook.timeout} ms`,
          result(null, "SIGKILL"),
        ),
      );
    });

    const collect = (which: "stdout" | "stderr") => (chunk: Buffer) => {
      const room = OUTPUT_LIMIT - out.bytes[which];
      if (room <= 0) {
        truncated = true;
        return;
      }
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      truncated ||= part.length < chunk.length;
      out[which].push(part);
      out.bytes[which] += part.length;
    };
    proc.stdout?.on("data", collect("stdout"));
    proc.stderr?.on("data", collect("stderr"));
    proc.once("error", (err) => {
      killGroup(proc);
      finish(spawnError(hook.name, file, err));
    });
    // A command that does not read its stdin closes it early: EPIPE is not a failure.
    proc.stdin?.on("error", () => {});
    proc.stdin?.end(`${JSON.stringify(n)}\n`);

    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const judge = () => {
      if (!exit || settled) return;
      const r = result(exit.code, exit.signal);
      if (exit.code === 0) return finish(undefined, r);
      const what = exit.signal ? `killed by ${exit.signal}` : `exit ${exit.code}`;
      const first = r.stderr.trim().split("\n", 1)[0]!.slice(0, 200);
      finish(
        new CommandHookError("LL_HOOK_EXIT", `${hook.name}: ${file} ${what}${first ? `: ${first}` : ""}`, r),
      );
    };
    proc.once("exit", (code, sig) => {
      exit = { code, signal: sig };
      if (!settled) grace = clock.timeout(PIPE_GRACE, judge);
    });
    proc.once("close", judge);
  });
}

function spawnError(hook: string, file: string, err: unknown): HookError {
  const errno = (err as NodeJS.ErrnoException)?.code;
  return new HookError("LL_HOOK_SPAWN", `${hook}: cannot run ${file}${errno ? ` (${errno})` : ""}`, {
    cause: err,
  });
}

/** LL_HOOK_EXIT or LL_HOOK_TIMEOUT, with what the command did (its output, for the log). */
export class CommandHookError extends HookError {
  readonly result: CommandResult;

  constructor(code: "LL_HOOK_EXIT" | "LL_HOOK_TIMEOUT", message: string, result: CommandResult) {
    super(code, message);
    this.name = "CommandHookError";
    this.result = result;
  }
}
