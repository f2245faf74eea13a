import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HookDispatcher } from "../../src/hooks/dispatcher.ts";
import { parseHooks } from "../../src/hooks/schema.ts";
import { change, recordingLogger, until } from "./helpers.ts";

/** Appends {env (LIFELINE_* and EXTRA), stdin} as one JSON line to $OUT; sleeps 300 ms first
 *  when the change is to "down", so a slow run is followed by a fast one. */
const RECORDER = `
const fs = require("node:fs");
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => { input += c; });
process.stdin.on("end", () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("LIFELINE_") || k === "EXTRA"));
  setTimeout(() => {
    fs.appendFileSync(process.env.OUT, JSON.stringify({ env, stdin: input }) + "\\n");
  }, process.env.LIFELINE_TO === "down" ? 300 : 0);
});
`;

function lines(file: string): Array<{ env: Record<string, string>; stdin: string }> {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("command hook (real processes)", () => {
  let dir: string;
  let dispatcher: HookDispatcher | undefined;
  const leftovers: number[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "lifeline-hooks-cmd-"));
  });
  afterEach(async () => {
    await dispatcher?.stop(500);
    dispatcher = undefined;
    for (const pid of leftovers.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs once per change, in order, with the change in LIFELINE_* and the JSON on stdin", async () => {
    const out = join(dir, "runs.jsonl");
    const logger = recordingLogger();
    dispatcher = new HookDispatcher(
      parseHooks([
        { name: "rec", command: [process.execPath, "-e", RECORDER], env: { OUT: out, EXTRA: "x" } },
      ]),
      { logger, monitor: "m1" },
    );
    const changes = [
      change("db", "suspect", "down", {
        kind: "refused",
        errno: "ECONNREFUSED",
        reason: '3 failures; it\'s "down" $(rm -rf /)',
      }),
      change("db", "down", "recovering"),
      change("web", "healthy", "degraded", { kind: "overloaded" }),
    ];
    for (const t of changes) dispatcher.notify(t);
    expect(await dispatcher.stop(20_000)).toEqual({ unfinished: 0 });

    const runs = lines(out);
    // the first run was slower (300 ms) than the next: order is kept all the same
    expect(runs.map((r) => `${r.env.LIFELINE_TARGET}:${r.env.LIFELINE_TO}`)).toEqual([
      "db:down",
      "db:recovering",
      "web:degraded",
    ]);
    expect(runs[0]!.env).toEqual({
      LIFELINE_EVENT: "state",
      LIFELINE_TARGET: "db",
      LIFELINE_FROM: "suspect",
      LIFELINE_TO: "down",
      LIFELINE_AT: new Date(changes[0]!.at).toISOString(),
      LIFELINE_REASON: '3 failures; it\'s "down" $(rm -rf /)', // passed as data, never interpreted
      LIFELINE_KIND: "refused",
      LIFELINE_ERRNO: "ECONNREFUSED",
      LIFELINE_MONITOR: "m1",
      LIFELINE_HOOK: "rec",
      EXTRA: "x",
    });
    expect(runs[1]!.env.LIFELINE_KIND).toBe(""); // always set, empty when absent
    expect(runs[0]!.stdin.endsWith("\n")).toBe(true);
    expect(JSON.parse(runs[0]!.stdin)).toEqual({
      event: "state",
      target: "db",
      from: "suspect",
      to: "down",
      at: new Date(changes[0]!.at).toISOString(),
      reason: '3 failures; it\'s "down" $(rm -rf /)',
      kind: "refused",
      errno: "ECONNREFUSED",
      monitor: "m1",
    });
    expect(JSON.parse(runs[2]!.stdin)).toMatchObject({ target: "web", to: "degraded", kind: "overloaded" });
    expect(dispatcher.stats()).toEqual({ sent: 3, failed: 0, retries: 0, dropped: 0, suppressed: 0 });
  });

  it("a string runs with /bin/sh -c; output is logged at debug, a non-zero exit as a warning", async () => {
    const out = join(dir, "sh.txt");
    const logger = recordingLogger();
    dispatcher = new HookDispatcher(
      parseHooks([
        {
          name: "sh",
          command: `printf '%s %s\\n' "$LIFELINE_TARGET" "$LIFELINE_TO" >> "$OUT"; echo said-out; echo said-err >&2; [ "$LIFELINE_TO" != down ]`,
          env: { OUT: out },
        },
      ]),
      { logger },
    );
    dispatcher.notify(change("a b", "healthy", "suspect"));
    dispatcher.notify(change("a b", "suspect", "down"));
    await dispatcher.stop(20_000);
    expect(readFileSync(out, "utf8")).toBe("a b suspect\na b down\n");
    expect(dispatcher.stats()).toMatchObject({ sent: 1, failed: 1 });
    const ran = logger.lines.find((l) => l.level === "debug" && l.msg === "hook: command ran")!;
    expect(ran.obj).toMatchObject({ hook: "sh", exitCode: 0, stdout: "said-out\n", stderr: "said-err\n" });
    const warns = logger.lines.filter((l) => l.level === "warn");
    expect(warns).toHaveLength(1);
    expect(warns[0]!.obj).toMatchObject({ hook: "sh", target: "a b", to: "down", code: "LL_HOOK_EXIT" });
    expect(warns[0]!.msg).toContain("exit 1: said-err");
  });

  it("a run past its timeout is killed with its whole process group", async () => {
    const pidFile = join(dir, "pid");
    const logger = recordingLogger();
    dispatcher = new HookDispatcher(
      parseHooks([{ name: "slow", command: `sleep 30 & echo $! > "${pidFile}"; wait`, timeout: "500ms" }]),
      { logger },
    );
    dispatcher.notify(change("db", "healthy", "down"));
    await until(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "", 10_000, "pid file");
    const grandchild = Number(readFileSync(pidFile, "utf8").trim());
    leftovers.push(grandchild);
    await dispatcher.stop(20_000);
    expect(dispatcher.stats()).toMatchObject({ sent: 0, failed: 1 });
    expect(logger.lines.find((l) => l.level === "warn")!.obj).toMatchObject({ code: "LL_HOOK_TIMEOUT" });
    await until(() => !alive(grandchild), 5000, "the background sleep to be killed");
  });

  it("a program that cannot be started fails with LL_HOOK_SPAWN; the queue goes on", async () => {
    const logger = recordingLogger();
    dispatcher = new HookDispatcher(parseHooks([{ name: "nope", command: [join(dir, "no-such-program")] }]), {
      logger,
    });
    dispatcher.notify(change("db", "healthy", "down"));
    dispatcher.notify(change("db", "down", "healthy"));
    await dispatcher.stop(10_000);
    expect(dispatcher.stats()).toMatchObject({ sent: 0, failed: 2 });
    const warn = logger.lines.find((l) => l.level === "warn")!;
    expect(warn.obj).toMatchObject({ code: "LL_HOOK_SPAWN" });
    expect(warn.msg).toContain("ENOENT");
  });

  it("stop() kills a run still going after its bound and counts what was left", async () => {
    const started = join(dir, "started");
    dispatcher = new HookDispatcher(
      parseHooks([{ name: "hang", command: `echo $$ > "${started}"; exec sleep 30`, timeout: "60s" }]),
    );
    dispatcher.notify(change("db", "healthy", "down"));
    dispatcher.notify(change("db", "down", "healthy"));
    await until(() => existsSync(started) && readFileSync(started, "utf8").trim() !== "", 10_000, "start");
    const pid = Number(readFileSync(started, "utf8").trim());
    leftovers.push(pid);
    expect(await dispatcher.stop(200)).toEqual({ unfinished: 2 });
    expect(dispatcher.stats()).toMatchObject({ sent: 0, failed: 1, dropped: 1 });
    await until(() => !alive(pid), 5000, "the command to be killed");
  });
});
