import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { redisServerPath } from "../../bench/lib/redis-server.ts";
import { alive, parseTables, pgrep, runScript } from "./support.ts";

const out = mkdtempSync(join(tmpdir(), "lifeline-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("bench/throughput.ts", () => {
  it("measures every cell in a quick run, prints the table and leaves no process or file behind", async () => {
    const runId = `vitest-${process.pid}-${Date.now()}`;
    const r = await runScript(
      ["bench/throughput.ts", "--quick", "--seconds", "0.5", "--out", out, "--run-id", runId],
      90_000,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("W=32 messages in flight");

    const [rows] = parseTables(r.stdout);
    // W=32 for 1/10/100 clients, then the seed's way (1 in flight) for 1 client, per store
    // (Redis when redis-server is installed: CI installs it).
    const stores = redisServerPath ? ["memory", "sqlite", "redis"] : ["memory", "sqlite"];
    const cells = stores.flatMap((s) => [`${s}/1/32`, `${s}/10/32`, `${s}/100/32`, `${s}/1/1`]);
    expect(rows?.map((row) => `${row.store}/${row.clients}/${row["in flight/client"]}`)).toEqual(cells);
    for (const row of rows!) {
      const cell = `${row.store}/${row.clients}`;
      expect(Number(row["msgs/s"]), `${cell} msgs/s`).toBeGreaterThan(0);
      expect(Number(row["p99 ms"]), `${cell} p99`).toBeGreaterThanOrEqual(Number(row["p50 ms"]));
      expect(row["node CPU %"], `${cell} node CPU`).toMatch(/^\d+$/);
      // Every reply echoed its message, and every node drained and exited 0 on SIGTERM.
      expect(row.errors, `${cell} errors`).toBe("0");
    }

    const json = JSON.parse(readFileSync(join(out, "throughput.json"), "utf8"));
    expect(json.cells.map((c: { nodeExit: unknown }) => c.nodeExit)).toEqual(cells.map(() => 0));
    expect(json.leftoverPids).toEqual([]);
    expect((json.childPids as number[]).filter(alive)).toEqual([]);
    expect(pgrep(`--id ${runId}-`)).toEqual([]);
    expect(json.tempDirs).toHaveLength(4);
    expect((json.tempDirs as string[]).filter((d) => existsSync(d))).toEqual([]);
    expect(readFileSync(join(out, "throughput.md"), "utf8")).toContain("| sqlite ");
  }, 120_000);
});
