import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { alive, parseTables, runScript } from "./support.ts";

const out = mkdtempSync(join(tmpdir(), "lifeline-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("bench/failover.ts", () => {
  it("quick run: prints the table, loses and duplicates nothing, leaves no process or file behind", async () => {
    const r = await runScript(["bench/failover.ts", "--quick", "--out", out], 120_000);
    expect(r.code, r.stderr).toBe(0);
    const [rows] = parseTables(r.stdout);
    expect(rows?.map((row) => `${row.strategy}/${row.fault}`)).toEqual([
      "lifeline/SIGKILL",
      "lifeline/SIGSTOP",
      "classic/SIGKILL",
      "classic/SIGSTOP",
    ]);
    for (const row of rows!) {
      expect(row.lost, `${row.strategy} lost`).toBe("0");
      expect(row.duplicated, `${row.strategy} duplicated`).toBe("0");
    }
    const kill = rows!.find((row) => row.strategy === "lifeline" && row.fault === "SIGKILL")!;
    expect(Number(kill["clients moved"])).toBeGreaterThan(0);
    expect(Number(kill["not moved"])).toBe(0);
    const json = JSON.parse(readFileSync(join(out, "failover.json"), "utf8"));
    expect(json.rows).toHaveLength(4);
    // Every node process it started is gone, and its folder too (checked by pid and path:
    // other runs on the machine must not matter).
    expect((json.pids as number[]).length).toBeGreaterThanOrEqual(3);
    expect((json.pids as number[]).filter(alive)).toEqual([]);
    expect(existsSync(json.dir as string)).toBe(false);
  }, 150_000);
});
