import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseTables, pgrep, runScript } from "./support.ts";

const shm = (): string[] =>
  existsSync("/dev/shm")
    ? readdirSync("/dev/shm").filter((f) => f.startsWith("lifeline-failover-bench-"))
    : [];
const out = mkdtempSync(join(tmpdir(), "lifeline-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("bench/failover.ts", () => {
  it("quick run: prints the table, loses and duplicates nothing, leaves no process or file behind", async () => {
    const before = new Set(shm());
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
    expect(pgrep("lifeline-failover-bench-")).toEqual([]);
    const after = readdirSync("/dev/shm").filter(
      (f) => f.startsWith("lifeline-failover-bench-") && !before.has(f),
    );
    expect(after).toEqual([]);
  }, 150_000);
});
