import { type ChildProcess, spawn } from "node:child_process";
import type { Socket } from "node:net";

/**
 * The watchdog's program (plain CommonJS, run with `node -e`, so it starts in ~50 ms without
 * tsx). It reads lines from its stdin — `pid N` (a process to clean up), `dir PATH` (a folder
 * to remove), `done` (the demo cleaned up itself) — and when stdin ends without `done`, the
 * demo has died: it sends SIGCONT to every listed process still running (a node frozen by
 * the chaos cannot notice that its own stdin closed), gives them `GRACE` ms to drain and exit
 * on their own, SIGKILLs what is left, removes the folder and exits.
 */
const GRACE = 5000;
const PROGRAM = String.raw`
const fs = require("node:fs");
const pids = new Set();
let dir;
let done = false;
let buf = "";
const stat = (pid) => {
  try {
    const s = fs.readFileSync("/proc/" + pid + "/stat", "utf8");
    return s.slice(s.lastIndexOf(")") + 2)[0];
  } catch {
    return undefined;
  }
};
const alive = (pid) => {
  if (process.platform === "linux") {
    const state = stat(pid);
    return state !== undefined && state !== "Z";
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const signal = (pid, sig) => {
  try {
    process.kill(pid, sig);
  } catch {}
};
const finish = () => {
  if (done) process.exit(0);
  const left = () => [...pids].filter(alive);
  for (const pid of left()) signal(pid, "SIGCONT");
  const end = Date.now() + ${GRACE};
  const tick = () => {
    const rest = left();
    if (rest.length > 0 && Date.now() < end) return void setTimeout(tick, 100);
    for (const pid of rest) signal(pid, "SIGKILL");
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  tick();
};
process.on("SIGHUP", () => {});
process.on("SIGINT", () => {});
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buf += chunk;
  const lines = buf.split("\n");
  buf = lines.pop();
  for (const line of lines) {
    const space = line.indexOf(" ");
    const word = space < 0 ? line : line.slice(0, space);
    const arg = space < 0 ? "" : line.slice(space + 1);
    if (word === "pid") pids.add(Number(arg));
    else if (word === "dir") dir = arg;
    else if (word === "done") done = true;
  }
});
process.stdin.on("end", finish);
process.stdin.on("error", finish);
`;

/**
 * A watchdog process for the demo. The nodes already exit when the demo dies (their stdin
 * pipe closes: `--exit-with-stdin`), but two things need someone alive afterwards: a node
 * the chaos has frozen (SIGSTOP) cannot read its stdin until it is continued, and the
 * temporary folder. The watchdog runs in its own process group (a terminal's Ctrl-C does
 * not reach it) and watches a pipe from the demo; if the demo goes away without saying
 * `done` — SIGKILL, a crash, a second Ctrl-C — it thaws, waits for and if need be kills
 * every process the demo started, and removes the folder.
 */
export class Reaper {
  private readonly child: ChildProcess;
  readonly pid: number | undefined;

  constructor(dir: string) {
    this.child = spawn(process.execPath, ["-e", PROGRAM], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
    });
    this.pid = this.child.pid;
    // Without a watchdog (it could not start) the demo still cleans up on every normal path.
    this.child.on("error", () => {});
    this.child.stdin?.on("error", () => {});
    // Neither the process nor its pipe may keep the demo alive.
    this.child.unref();
    (this.child.stdin as unknown as Socket | null)?.unref?.();
    this.write(`dir ${dir}`);
  }

  /** A process to clean up if the demo dies. */
  watch(pid: number): void {
    this.write(`pid ${pid}`);
  }

  /** The demo has stopped everything itself: the watchdog exits. Resolves once it has. */
  async done(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.pid === undefined) return;
    const pid = this.pid;
    let timer: NodeJS.Timeout | undefined;
    const exited = new Promise<void>((resolve) => {
      this.child.once("exit", () => resolve());
      // It should exit at once; if not, it is killed (and not waited for much longer).
      timer = setTimeout(() => {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
        setTimeout(resolve, 500);
      }, 2000);
    });
    this.child.ref();
    this.write("done");
    this.child.stdin?.end();
    await exited;
    clearTimeout(timer);
  }

  private write(line: string): void {
    if (this.child.stdin?.writable) this.child.stdin.write(`${line}\n`);
  }
}
