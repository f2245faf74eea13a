import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";

/** Running, as opposed to gone or a zombie waiting for its (new) parent to reap it. */
function alive(pid: number): boolean {
  if (process.platform === "linux") {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await sleep(100);
  return check();
}

interface Start {
  type: "start";
  dir: string;
  admin: string;
  watchdog: number;
  nodes: { id: string; pid: number; address: string }[];
}

interface Summary {
  type: "summary";
  sent: number;
  acknowledged: number;
  lost: number;
  duplicated: number;
  mismatched: number;
  failovers: number;
  pids: number[];
  watchdog: number;
  dir: string;
}

const jsonLine = <T>(out: string, type: string): T | undefined => {
  const line = out.split("\n").find((l) => l.startsWith(`{"type":"${type}"`));
  return line ? (JSON.parse(line) as T) : undefined;
};

let demo: ChildProcess | undefined;
let dir: string | undefined;
afterEach(() => {
  if (demo?.exitCode === null && demo.signalCode === null) demo.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
  demo = undefined;
  dir = undefined;
});

function startDemo(args: string[]): { out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ["bin/lifeline.js", "demo", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  demo = child;
  let out = "";
  child.stdout!.on("data", (d) => {
    out += d;
  });
  child.stderr!.on("data", (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { out: () => out, exited };
}

describe("lifeline demo", () => {
  it("runs three nodes, a monitor and a client under chaos; stops after --duration with nothing left behind", async () => {
    const run = startDemo(["--chaos", "--duration", "12"]);
    expect(await until(() => jsonLine(run.out(), "start") !== undefined, 10_000)).toBe(true);
    const start = jsonLine<Start>(run.out(), "start")!;
    dir = start.dir;
    expect(start.nodes.map((n) => n.id)).toEqual(["n1", "n2", "n3"]);
    expect(existsSync(`${start.dir}/demo.db`)).toBe(true);

    // The monitor's admin API is up, on loopback, watching the three nodes.
    expect(start.admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const targets = (await (await fetch(`${start.admin}/api/targets`)).json()) as { id: string }[];
    expect(targets.map((t) => t.id).sort()).toEqual(["n1", "n2", "n3"]);
    // It prints the dashboard's address, and the dashboard is there.
    expect(run.out()).toContain(`dashboard: ${start.admin}/`);
    const page = await fetch(`${start.admin}/`);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);

    expect(await run.exited).toBe(0);
    const out = run.out();
    // The view: every node with its health and pid, the client's node, the counters.
    expect(out).toMatch(
      /status {2}n1 healthy \(pid \d+\) {2}n2 healthy \(pid \d+\) {2}n3 healthy \(pid \d+\) \| client connected on n\d \| sent \d+ {2}acknowledged \d+ {2}pending \d+ {2}lost 0 {2}duplicated 0 \| failovers \d+ {2}p50/,
    );
    expect(out).toMatch(/monitor: n\d unknown → healthy/);
    expect(out).toMatch(/chaos: SIG(KILL|STOP|TERM) n\d/);
    expect(out).toMatch(/stopping \(--duration reached\)/);
    expect(out).toMatch(/^demo: sent \d+, acknowledged \d+, lost 0, duplicated 0; \d+ failovers/m);

    const summary = jsonLine<Summary>(out, "summary")!;
    expect(summary.sent).toBeGreaterThan(100);
    expect(summary.acknowledged).toBe(summary.sent);
    expect(summary.lost).toBe(0);
    expect(summary.duplicated).toBe(0);
    expect(summary.mismatched).toBe(0);
    expect(summary.pids).toEqual(expect.arrayContaining(start.nodes.map((n) => n.pid)));
    // Every process it started is gone (restarted nodes and the watchdog included), and so
    // is the folder.
    const pids = [...summary.pids, summary.watchdog];
    await until(() => pids.every((p) => !alive(p)), 3000);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(start.dir)).toBe(false);
  }, 30_000);

  it("when the demo itself is SIGKILLed, its nodes exit on their own and the folder goes", async () => {
    const run = startDemo([]);
    expect(await until(() => /status {2}n1 healthy/.test(run.out()), 15_000)).toBe(true);
    const start = jsonLine<Start>(run.out(), "start")!;
    dir = start.dir;
    demo!.kill("SIGKILL");
    await run.exited;
    const pids = [...start.nodes.map((n) => n.pid), start.watchdog];
    expect(await until(() => pids.every((p) => !alive(p)) && !existsSync(start.dir), 10_000)).toBe(true);
  }, 20_000);
});
