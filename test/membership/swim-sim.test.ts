import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseTables, runScript } from "../bench/support.ts";

/** A smoke run of bench/swim-sim so it does not rot: 10 members, 5 simulated seconds. */
const out = mkdtempSync(join(tmpdir(), "lifeline-swim-sim-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("bench/swim-sim", () => {
  it("--quick prints its table and writes its results where told", async () => {
    const r = await runScript(
      ["bench/swim-sim.ts", "--quick", "--sizes", "10", "--seconds", "5", "--out", out],
      60_000,
    );
    expect(r.code, r.stderr).toBe(0);
    const [rows] = parseTables(r.stdout);
    expect(rows).toHaveLength(1);
    expect(existsSync(join(out, "swim-sim.json"))).toBe(true);
  }, 90_000);
});
