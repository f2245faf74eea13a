import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { z } from "zod";
import type { Timer } from "../../util/clock.ts";
import type { Probe, ProbeContext, ProbeOutcome } from "../types.ts";
import { errorOutcome } from "./common.ts";
import type { ProbeType } from "./registry.ts";

/**
 * `exec`: run a command, as Nagios plugins and Consul script checks are run. Exit 0 passes,
 * 1 warns (the target shows `degraded`), anything else — 2, a crash, a signal — fails. The
 * first line of the output becomes the result's message; the output itself (stdout and
 * stderr, interleaved, truncated) is kept in `detail.output`. Warnings and failures carry kind
 * `protocol` (the check answered, and not "passing"); a command that cannot be started fails
 * with its errno (ENOENT, EACCES).
 *
 * The child runs in its own process group, so that at the deadline the whole group — the
 * shell and whatever it started — is killed, not just the shell.
 */
export const execSchema = z
  .object({
    /** argv, e.g. ["/usr/lib/nagios/plugins/check_disk", "-w", "10%"] (no shell), or one
     *  string run with `/bin/sh -c` (pipes and globs, at the cost of quoting). */
    command: z.union([
      z.string().min(1, { message: "must not be empty" }),
      z.array(z.string()).min(1, { message: "must name a program" }),
    ]),
    /** Working directory. Default the monitor's. */
    cwd: z
      .string()
      .min(1)
      .refine((dir) => existsSync(dir), { message: "directory not found" })
      .optional(),
    /** Variables set over the monitor's own environment. Default none. */
    env: z.record(z.string(), z.string()).default({}),
    /** Most output bytes kept, from the start (Nagios puts the summary first). Default 4096:
     *  more keeps more of a verbose script's output in every result in history. */
    maxOutputBytes: z.number().int().positive().default(4096),
  })
  .strict();

export type ExecSpec = z.infer<typeof execSchema>;

/** After the command exits, how long to wait for its output pipes to close, ms: a
 *  background process it left behind may hold them open for ever. */
const PIPE_GRACE = 200;

function argv(command: ExecSpec["command"]): [string, string[]] {
  return typeof command === "string" ? ["/bin/sh", ["-c", command]] : [command[0]!, command.slice(1)];
}

/** "cannot run /usr/bin/chek_disk" with the errno beside it (ENOENT, EACCES): Node's own
 *  message ("spawn /usr/bin/chek_disk ENOENT") only repeats both. */
function spawnFailure(file: string, err: unknown): ProbeOutcome {
  const outcome = errorOutcome(err);
  outcome.message = outcome.errno ? `cannot run ${file}` : `cannot run ${file}: ${outcome.message}`;
  return outcome;
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

export class ExecProbe implements Probe {
  constructor(private readonly spec: ExecSpec) {}

  run(ctx: ProbeContext): Promise<ProbeOutcome> {
    const { clock, signal } = ctx;
    const [file, args] = argv(this.spec.command);
    const max = this.spec.maxOutputBytes;
    return new Promise<ProbeOutcome>((resolve) => {
      let settled = false;
      let grace: Timer | undefined;
      const chunks: Buffer[] = [];
      let bytes = 0;
      let truncated = false;
      const output = () => Buffer.concat(chunks).toString("utf8").trim();

      let child: ChildProcess | undefined;
      const finish = (outcome: ProbeOutcome) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        grace?.cancel();
        child?.stdout?.destroy();
        child?.stderr?.destroy();
        resolve(outcome);
      };
      const onAbort = () => {
        if (child) killGroup(child);
        const out = output();
        finish({
          status: "fail",
          kind: "timeout",
          message: `killed after ${Math.round(ctx.deadline)} ms without exiting`,
          detail: { output: out, truncated, pid: child?.pid },
        });
      };
      if (signal.aborted) return onAbort();

      let proc: ChildProcess;
      try {
        proc = spawn(file, args, {
          cwd: this.spec.cwd,
          env: { ...process.env, ...this.spec.env },
          detached: true, // its own process group, killed as one
          stdio: ["ignore", "pipe", "pipe"],
        });
      } catch (err) {
        return finish(spawnFailure(file, err));
      }
      child = proc;
      signal.addEventListener("abort", onAbort, { once: true });

      const collect = (chunk: Buffer) => {
        if (bytes >= max) {
          truncated = true;
          return;
        }
        const part = chunk.length > max - bytes ? chunk.subarray(0, max - bytes) : chunk;
        truncated ||= part.length < chunk.length;
        chunks.push(part);
        bytes += part.length;
      };
      proc.stdout?.on("data", collect);
      proc.stderr?.on("data", collect);
      proc.once("error", (err) => finish(spawnFailure(file, err)));

      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      const judge = () => {
        if (!exit) return;
        const out = output();
        const first = out.split("\n", 1)[0]!.trim().slice(0, 200);
        const what = exit.signal ? `killed by ${exit.signal}` : `exit ${exit.code}`;
        const message = first ? `${what}: ${first}` : what;
        const detail = { exitCode: exit.code, signal: exit.signal, output: out, truncated, pid: proc.pid };
        if (exit.code === 0) finish({ status: "pass", message, detail });
        else if (exit.code === 1) finish({ status: "warn", kind: "protocol", message, detail });
        else finish({ status: "fail", kind: "protocol", message, detail });
      };
      proc.once("exit", (code, sig) => {
        exit = { code, signal: sig };
        if (!settled) grace = clock.timeout(PIPE_GRACE, judge);
      });
      // All output is in once the pipes close (normally right after the exit).
      proc.once("close", judge);
    });
  }
}

export const execProbe: ProbeType<ExecSpec> = {
  type: "exec",
  schema: execSchema,
  create: (spec) => new ExecProbe(spec),
  describe: (spec) =>
    typeof spec.command === "string"
      ? `exec sh -c ${JSON.stringify(spec.command)}`
      : `exec ${spec.command.join(" ")}`,
  /** A script's run time says nothing about network latency: a fixed timeout, no patience,
   *  and no "slow" verdict from how long it ran. */
  settings: () => ({
    patience: false,
    slowThreshold: 0,
    timeout: { mode: "fixed", initial: 10_000, min: 10_000, max: 10_000 },
  }),
};
