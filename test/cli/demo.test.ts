import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("lifeline demo", () => {
  it("runs three nodes, a monitor and a client under chaos; Ctrl-C leaves no process or folder behind", async () => {
    const child = spawn(process.execPath, ["bin/lifeline.js", "demo", "--chaos"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      // Until the nodes are healthy, traffic flows and the chaos has done something.
      const end = Date.now() + 30_000;
      const ready = () =>
        /status: n1=healthy n2=healthy n3=healthy \| client on n\d \(connected\)/.test(out) &&
        /chaos: /.test(out);
      while (!ready() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(/started nodes n1 \(pid \d+/);
      expect(out).toMatch(/chaos: /);
      child.kill("SIGINT");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    const summary = JSON.parse(out.trim().split("\n").pop()!) as {
      type: string;
      sent: number;
      acknowledged: number;
      lost: number;
      duplicated: number;
      pids: number[];
      dir: string;
    };
    expect(summary.type).toBe("summary");
    expect(summary.sent).toBeGreaterThan(50);
    expect(summary.lost).toBe(0);
    expect(summary.duplicated).toBe(0);
    expect(summary.pids.length).toBeGreaterThanOrEqual(3);
    expect(summary.pids.filter(alive)).toEqual([]);
    expect(existsSync(summary.dir)).toBe(false);
  }, 60_000);
});
