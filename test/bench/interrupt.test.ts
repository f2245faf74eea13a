import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { listNamespaces } from "../fault/netns.ts";
import { pgrep, root } from "./support.ts";

/**
 * An interrupted benchmark (Ctrl-C: SIGINT to the benchmark, by pid) leaves nothing behind:
 * no child process (found by the run's marker on their command lines), and no network
 * namespace of its own (named after its pid), and with the namespaces their iptables rules.
 * The benchmarks with the most to clean up: namespaces, iptables rules, proxies, monitors.
 */
const out = mkdtempSync(join(tmpdir(), "lifeline-bench-interrupt-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log("interrupt tests of namespaced benchmarks: not root, run on the host only");

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  return cond();
}

async function interrupt(script: string, args: string[], nsPrefix: string) {
  const runId = `int${Math.random().toString(36).slice(2, 8)}`;
  const marker = `--lifeline-bench-run=${runId}`;
  const child = spawn(
    process.execPath,
    ["--import", "tsx", script, ...args, "--run-id", runId, "--out", out],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout!.on("data", (d) => {
    output += d;
  });
  child.stderr!.on("data", (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const ownNamespaces = () => listNamespaces().filter((n) => n.startsWith(`${nsPrefix}${child.pid}-`));
  try {
    // In the middle of its work: children running (and, as root, its namespace made).
    const started = await until(
      () => pgrep(marker).length >= 2 && (!isRoot || ownNamespaces().length > 0),
      60_000,
    );
    expect(started, output).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    child.kill("SIGINT");
    const code = await Promise.race([
      exited,
      new Promise<"hung">((r) => setTimeout(() => r("hung"), 30_000)),
    ]);
    expect(code, output).toBe(130);
    expect(await until(() => pgrep(marker).length === 0, 5000), `left: ${pgrep(marker)}`).toBe(true);
    expect(ownNamespaces()).toEqual([]);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    for (const pid of pgrep(marker)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }
}

describe("an interrupted benchmark leaves nothing behind", () => {
  it("bench/detection.ts", async () => {
    await interrupt("bench/detection.ts", ["--quick"], "lldt-");
  }, 120_000);

  it("bench/false-positives.ts", async () => {
    await interrupt("bench/false-positives.ts", ["--minutes", "1", "--targets", "1"], "llfp-");
  }, 120_000);
});
