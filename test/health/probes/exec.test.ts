import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { resolveConfig } from "../../../src/config/resolve.ts";
import { ConfigError } from "../../../src/errors.ts";
import { ExecProbe, execProbe, execSchema } from "../../../src/health/probes/exec.ts";
import { defaultRegistry } from "../../../src/health/probes/index.ts";
import type { ProbeOutcome } from "../../../src/health/types.ts";
import { systemClock } from "../../../src/util/clock.ts";
import { runProbe, until } from "./helpers.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-exec-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function probe(spec: Record<string, unknown>, deadline?: number): Promise<ProbeOutcome> {
  return runProbe(new ExecProbe(execSchema.parse(spec)), deadline);
}

/** A process is gone (or a zombie nobody has reaped yet: it runs no more either). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

describe("exec probe", () => {
  it("exit 0 passes, with the first line of output in the message", async () => {
    const o = await probe({ command: ["/bin/sh", "-c", "echo 'OK - all good'; echo 'line two'"] });
    expect(o).toMatchObject({ status: "pass", message: "exit 0: OK - all good" });
    expect(o.detail).toMatchObject({
      exitCode: 0,
      signal: null,
      output: "OK - all good\nline two",
      truncated: false,
    });
  });

  it("exit 1 warns and exit 2 fails; stderr is output too", async () => {
    const warn = await probe({ command: "echo 'WARNING - load 5' >&2; exit 1" });
    expect(warn).toMatchObject({ status: "warn", message: "exit 1: WARNING - load 5" });
    expect(warn.kind).toBeDefined();
    const fail = await probe({ command: "echo 'CRITICAL - disk full'; exit 2" });
    expect(fail).toMatchObject({ status: "fail", message: "exit 2: CRITICAL - disk full" });
    expect(fail.detail?.exitCode).toBe(2);
    expect(await probe({ command: "exit 3" })).toMatchObject({ status: "fail", message: "exit 3" });
  });

  it("a command killed by a signal fails", async () => {
    const o = await probe({ command: "kill -TERM $$" });
    expect(o).toMatchObject({ status: "fail", message: "killed by SIGTERM" });
    expect(o.detail).toMatchObject({ exitCode: null, signal: "SIGTERM" });
  });

  it("keeps at most maxOutputBytes of output", async () => {
    const o = await probe({
      command: "head -c 100000 /dev/zero | tr '\\0' x; echo; echo tail",
      maxOutputBytes: 100,
    });
    expect(o.status).toBe("pass");
    expect(o.detail).toMatchObject({ output: "x".repeat(100), truncated: true });
  });

  it("merges env over the monitor's environment and runs in cwd", async () => {
    const dir = tempDir();
    const o = await probe({
      command: 'echo "$LIFELINE_TEST $PATH"; pwd',
      env: { LIFELINE_TEST: "hello" },
      cwd: dir,
    });
    const [first, second] = String(o.detail?.output).split("\n");
    expect(first).toBe(`hello ${process.env.PATH}`);
    expect(realpathSync(second!)).toBe(realpathSync(dir));
  });

  it("a program that does not exist fails with its errno", async () => {
    const o = await probe({ command: ["/nonexistent/check_thing", "-v"] });
    expect(o).toMatchObject({ status: "fail", errno: "ENOENT" });
    expect(o.message).toContain("cannot run /nonexistent/check_thing");
  });

  it("on abort it kills the whole process group and reports a timeout", async () => {
    const dir = tempDir();
    const pidFile = join(dir, "pid");
    const p = new ExecProbe(
      execSchema.parse({ command: `echo started; sleep 60 & echo $! > ${pidFile}; wait` }),
    );
    const controller = new AbortController();
    const pending = p.run({ signal: controller.signal, deadline: 60_000, clock: systemClock });
    await until(
      () => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "",
      5000,
      "the pid file",
    );
    const sleeper = Number(readFileSync(pidFile, "utf8"));
    controller.abort();
    const o = await pending;
    expect(o).toMatchObject({ status: "fail", kind: "timeout" });
    await until(() => gone(sleeper), 5000, "the grandchild to be killed");
  });

  it("does not wait for a background process that keeps the output pipe open", async () => {
    const o = await probe({ command: "sleep 30 & echo $!; exit 0" }, 20_000);
    expect(o).toMatchObject({ status: "pass" });
    const pid = Number(o.message.replace("exit 0: ", ""));
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, "SIGKILL");
  });
});

describe("exec configuration", () => {
  function issues(check: Record<string, unknown>) {
    try {
      resolveConfig({ targets: [{ id: "t", checks: [{ type: "exec", ...check }] }] }, defaultRegistry());
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`);
      throw err;
    }
    return [];
  }

  it("names the field in every error", () => {
    expect(issues({}).join()).toContain("targets[0].checks[0].command");
    expect(issues({ command: [] }).join()).toContain("checks[0].command");
    expect(issues({ command: "" }).join()).toContain("checks[0].command");
    expect(issues({ command: 42 }).join()).toContain("checks[0].command");
    expect(issues({ command: "true", cwd: "/nonexistent/dir" })).toEqual([
      "targets[0].checks[0].cwd: directory not found",
    ]);
    expect(issues({ command: "true", env: { A: 1 } }).join()).toContain("checks[0].env.A");
    expect(issues({ command: "true", maxOutputBytes: -1 }).join()).toContain("checks[0].maxOutputBytes");
  });

  it("defaults to a fixed 10 s timeout, no patience and no slow verdict", () => {
    const cfg = resolveConfig(
      { targets: [{ id: "t", checks: [{ type: "exec", command: "true" }] }] },
      defaultRegistry(),
    );
    const s = cfg.targets[0]!.checks[0]!.settings;
    expect(s.timeout).toMatchObject({ mode: "fixed", initial: 10_000, min: 10_000, max: 10_000 });
    expect(s.patience).toBe(false);
    expect(s.slowThreshold).toBe(0);
    const own = resolveConfig(
      { targets: [{ id: "t", checks: [{ type: "exec", command: "true", timeout: "30s" }] }] },
      defaultRegistry(),
    );
    expect(own.targets[0]!.checks[0]!.settings.timeout.initial).toBe(30_000);
    expect(cfg.targets[0]!.id).toBe("t");
    expect(execProbe.describe(execSchema.parse({ command: ["check", "-w", "1"] }))).toBe("exec check -w 1");
    expect(execProbe.fromTarget).toBeUndefined();
  });
});
