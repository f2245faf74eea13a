import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { canUseNamespaces } from "../fault/netns.ts";
import { alive, namespaces, parseTables, pgrep, runScript } from "./support.ts";

const out = mkdtempSync(join(tmpdir(), "lifeline-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

// The drop fault needs root, `ip` and `iptables`; the benchmark skips it (with the reason)
// otherwise, and so does this test's check of it.
const noDrop = canUseNamespaces();
if (noDrop) console.log(`bench/heartbeat-detection: the drop fault is skipped here: ${noDrop}`);

describe("bench/heartbeat-detection.ts", () => {
  it("runs a quick run of every fault, prints its tables and leaves no process or namespace behind", async () => {
    const runId = `vitest-${process.pid}-${Date.now()}`;
    const r = await runScript(
      ["bench/heartbeat-detection.ts", "--quick", "--out", out, "--run-id", runId],
      100_000,
    );
    expect(r.code, r.stderr).toBe(0);

    const [faults, healthy] = parseTables(r.stdout);
    expect(faults?.map((row) => row.fault)).toEqual(["kill", "stop", "drop"]);
    for (const row of faults!) {
      if (row.fault === "drop" && noDrop) {
        expect(row.met).toBe("skipped");
        expect(r.stdout).toContain("drop: skipped —");
        continue;
      }
      expect(row.trials, `${row.fault} trials`).toBe("3");
      // Every trial ends down: detection is what is measured; how fast is not asserted here.
      expect(row["down n"], `${row.fault} detected`).toBe("3");
      expect(row["down median"], `${row.fault} median`).toMatch(/^\d+ ms$/);
    }
    expect(faults!.find((row) => row.fault === "kill")?.["down kind"]).toMatch(/refused/);

    const expected = noDrop ? ["healthy-host"] : ["healthy-host", "healthy-ns"];
    expect(healthy?.map((row) => row["healthy node"])).toEqual(expected);
    for (const row of healthy!) {
      expect(Number(row.heartbeats), `${row["healthy node"]} heartbeats`).toBeGreaterThan(10);
      expect(row.down).toMatch(/^\d+$/);
      expect(row.suspect).toMatch(/^\d+$/);
    }

    const json = JSON.parse(readFileSync(join(out, "heartbeat-detection.json"), "utf8"));
    expect(json.trials).toHaveLength(noDrop ? 6 : 9);
    expect(json.leftoverPids).toEqual([]);
    expect(json.leftoverNamespaces).toEqual([]);
    expect(readFileSync(join(out, "heartbeat-detection.md"), "utf8")).toContain("| stop ");

    // Nothing of this run is left: not the children it recorded (nodes, monitors), not anything
    // with its tag, not its namespace.
    expect((json.childPids as number[]).filter(alive)).toEqual([]);
    expect(pgrep(`lifeline-bench-run=${runId}`)).toEqual([]);
    expect(pgrep(`--id ${runId}-`)).toEqual([]);
    if (!noDrop) {
      expect(json.namespace).toMatch(new RegExp(`^llhb-${r.pid}-\\d+$`));
      expect(namespaces().filter((n) => n.startsWith(`llhb-${r.pid}-`))).toEqual([]);
    }
  }, 120_000);
});
