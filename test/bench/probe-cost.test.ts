import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
const out = mkdtempSync(join(tmpdir(), "lifeline-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a script under tsx; kills it (by pid) if it overstays `ms`. */
function runScript(args: string[], ms: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: root });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGINT"), ms);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Pids whose command line contains `pattern`. */
function pgrep(pattern: string): number[] {
  try {
    return execFileSync("pgrep", ["-f", "--", pattern], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The Markdown table's rows as objects keyed by header. */
function parseTable(text: string): Array<Record<string, string>> {
  const lines = text.split("\n").filter((l) => l.startsWith("|"));
  const cells = (l: string) =>
    l
      .slice(1, -1)
      .split("|")
      .map((c) => c.trim());
  const headers = cells(lines[0] ?? "|");
  return lines.slice(2).map((l) => Object.fromEntries(cells(l).map((c, i) => [headers[i], c])));
}

describe("bench/probe-cost.ts", () => {
  it("runs the four variants in a quick run, prints the table, draws the charts and leaves no process behind", async () => {
    const runId = `vitest-${process.pid}-${Date.now()}`;
    const r = await runScript(
      [
        "bench/probe-cost.ts",
        "--quick",
        "--targets",
        "50",
        "--seconds",
        "3",
        "--warmup",
        "1",
        "--out",
        out,
        "--run-id",
        runId,
      ],
      80_000,
    );
    expect(r.code, r.stderr).toBe(0);

    const rows = parseTable(r.stdout);
    expect(rows.map((row) => row.variant)).toEqual(["lan-rst", "lan-fin", "classic", "heartbeat"]);
    for (const row of rows) {
      expect(row.targets).toBe("50");
      expect(Number(row["probes/s"]), `${row.variant} probes/s`).toBeGreaterThan(0);
    }
    // The heartbeat probe holds one connection per target and gets a result per heartbeat,
    // from a server that speaks the node's protocol: every target healthy, nothing failed.
    const hb = rows.find((row) => row.variant === "heartbeat")!;
    expect(hb.failed).toBe("0");
    expect(hb["not healthy"]).toBe("0");
    expect(Number(hb["fds max"])).toBeGreaterThanOrEqual(50);
    // A connect-only check closes with RST: no TIME_WAIT; `close: fin` leaves one per probe.
    const tw = Object.fromEntries(rows.map((row) => [row.variant, row.TIME_WAIT]));
    if (tw["lan-rst"] !== "n/a") {
      expect(tw["lan-rst"]).toBe("0");
      expect(Number(tw["lan-fin"])).toBeGreaterThan(0);
      // Persistent connections, dropped with RST when the monitor stops.
      expect(tw.heartbeat).toBe("0");
    }

    const json = JSON.parse(readFileSync(join(out, "probe-cost.json"), "utf8"));
    expect(json.variants).toHaveLength(4);
    expect(json.leftoverPids).toEqual([]);
    const md = readFileSync(join(out, "probe-cost.md"), "utf8");
    expect(md).toContain("| lan-fin ");
    expect(md).toContain("| heartbeat ");
    for (const chart of ["probe-cost", "probe-cost-rate"]) {
      expect(md).toContain(`](${chart}.svg)`);
      expect(existsSync(join(out, `${chart}.svg`)), chart).toBe(true);
      expect(readFileSync(join(out, `${chart}.svg`), "utf8")).toContain(">heartbeat<");
    }

    // Nothing of this run is left: not the children it recorded, not anything with its tag
    // (two servers, four monitors).
    expect(json.childPids.length).toBeGreaterThanOrEqual(6);
    expect((json.childPids as number[]).filter(alive)).toEqual([]);
    expect(pgrep(`lifeline-bench-run=${runId}`)).toEqual([]);
    expect(pgrep(`--run-id ${runId}`)).toEqual([]);
  }, 90_000);

  it("refuses, before starting anything, a target count that cannot fit under the descriptor limit", async () => {
    const m = /^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    const hard = m ? Number(m[1]) : Number.POSITIVE_INFINITY;
    if (!(hard < 1_000_000)) return; // no such limit here: nothing to refuse
    const runId = `vitest-${process.pid}-${Date.now()}-fd`;
    const r = await runScript(
      ["bench/probe-cost.ts", "--targets", String(hard), "--out", out, "--run-id", runId],
      30_000,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("descriptors");
    expect(pgrep(`lifeline-bench-run=${runId}`)).toEqual([]);
  }, 40_000);
});
