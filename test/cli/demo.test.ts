import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("lifeline demo", () => {
  it("starts a local cluster, reports it healthy, and exits cleanly on SIGINT", async () => {
    const child = spawn(process.execPath, ["bin/lifeline.js", "demo"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const healthy = () => out.split("\n").filter((l) => l.includes('"to":"healthy"')).length;
    const end = Date.now() + 20_000;
    while (healthy() < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGINT");
    const code = await exited;
    expect(healthy()).toBe(3);
    expect(out.split("\n")[0]).toContain('"targets":["node-1","node-2","node-3"]');
    expect(code).toBe(0);
  });
});
