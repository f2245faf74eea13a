import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { alive, parseTables, runScript } from "./support.ts";

const out = mkdtempSync(join(tmpdir(), "lifeline-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("bench/herd.ts", () => {
  it("quick run: prints the tables, every client resumes, nothing lost, no process or folder left behind", async () => {
    const r = await runScript(["bench/herd.ts", "--quick", "--out", out], 120_000);
    expect(r.code, r.stderr).toBe(0);
    console.log(r.stdout.split("\nresults:")[0]);
    const [moves, messages] = parseTables(r.stdout);
    expect(moves?.map((row) => row.strategy)).toEqual(["lifeline", "classic"]);
    expect(messages?.map((row) => row.strategy)).toEqual(["lifeline", "classic"]);
    for (const row of moves!) {
      expect(Number(row["on n1"]), `${row.strategy} on n1`).toBeGreaterThan(0);
      expect(row.resumed, `${row.strategy} resumed`).toBe(row["on n1"]);
    }
    // The seed's loop goes to the next server in its list; Lifeline's spreads.
    const classic = moves!.find((row) => row.strategy === "classic")!;
    expect(classic.n2).toBe(classic.resumed);
    const lifeline = moves!.find((row) => row.strategy === "lifeline")!;
    expect(Number(lifeline.n2)).toBeGreaterThan(0);
    expect(Number(lifeline.n3)).toBeGreaterThan(0);
    for (const row of messages!) {
      expect(row["sessions lost"], `${row.strategy} sessions lost`).toBe("0");
      expect(Number(row["msgs sent"]), `${row.strategy} sent`).toBeGreaterThan(0);
      expect(row.answered, `${row.strategy} answered`).toBe(row["msgs sent"]);
      expect(row.lost, `${row.strategy} lost`).toBe("0");
      expect(row.duplicated, `${row.strategy} duplicated`).toBe("0");
    }
    const json = JSON.parse(readFileSync(join(out, "herd.json"), "utf8"));
    expect(json.phases).toHaveLength(2);
    for (const p of json.phases) expect(p.sessionsWrongInStore).toEqual([]);
    expect(existsSync(join(out, "herd.md"))).toBe(true);
    expect(readFileSync(join(out, "herd.svg"), "utf8")).toMatch(/^<svg/);
    // Every process it started (3 nodes and the client processes per phase) is gone, and its
    // folder too (checked by pid and path: other runs on the machine must not matter).
    expect((json.pids as number[]).length).toBeGreaterThanOrEqual(2 * (3 + 1));
    expect((json.pids as number[]).filter(alive)).toEqual([]);
    expect(existsSync(json.dir as string)).toBe(false);
  }, 150_000);
});
