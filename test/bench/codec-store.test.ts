import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { redisServerPath } from "../../bench/lib/redis-server.ts";
import { parseTables, runScript } from "./support.ts";

/** Smoke runs of the small benchmarks, so they do not rot: seconds each, results to a temp dir. */
const out = mkdtempSync(join(tmpdir(), "lifeline-bench-small-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("small benchmarks", () => {
  it("bench/codec.ts --quick prints its table and writes its results", async () => {
    const r = await runScript(["bench/codec.ts", "--quick", "--out", out], 60_000);
    expect(r.code, r.stderr).toBe(0);
    const [rows] = parseTables(r.stdout);
    expect(rows!.length).toBeGreaterThan(1);
    expect(existsSync(join(out, "codec.json"))).toBe(true);
  }, 90_000);

  it("bench/store.ts --quick prints its table and writes its results", async () => {
    const r = await runScript(["bench/store.ts", "--quick", "--out", out], 90_000);
    expect(r.code, r.stderr).toBe(0);
    const [rows] = parseTables(r.stdout);
    const ids = ["memory-1", "memory-4", "sqlite-1", "sqlite-4", "sqlite-4p"];
    if (redisServerPath) ids.push("redis-1", "redis-4"); // CI installs redis-server
    expect(rows!.map((row) => row.variant)).toEqual(ids);
    for (const row of rows!) expect(Number(row["commits/s"]), row.variant).toBeGreaterThan(0);
    expect(existsSync(join(out, "store.json"))).toBe(true);
  }, 120_000);
});
