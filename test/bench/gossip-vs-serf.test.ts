import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { canUseNamespaces } from "../fault/netns.ts";
import { alive, namespaces, parseTables, pgrep, runScript } from "./support.ts";

const out = mkdtempSync(join(tmpdir(), "lifeline-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

// The comparison needs Serf (Debian package `serf`) and, for its loss scenarios, root with
// `ip` and `iptables`: the smoke test runs only where both are there, and says why not.
const noNetwork = canUseNamespaces();
const noSerf = spawnSync("serf", ["version"]).status === 0 ? undefined : "serf is not installed";
const why = noNetwork ?? noSerf;
if (why) console.log(`bench/gossip-vs-serf: smoke test skipped: ${why}`);

const SYSTEMS = ["serf lan", "lifeline lan", "lifeline memberlist"];

describe.skipIf(why !== undefined)("bench/gossip-vs-serf.ts", () => {
  it("a quick run measures both systems, prints their rows and leaves nothing behind", async () => {
    const runId = `vitest-${process.pid}-${Date.now()}`;
    const r = await runScript(
      ["bench/gossip-vs-serf.ts", "--quick", "--out", out, "--run-id", runId],
      280_000,
    );
    expect(r.code, r.stderr).toBe(0);

    const [detection, falses] = parseTables(r.stdout);
    expect(detection?.map((row) => row["system (min / median / max, s)"])).toEqual(SYSTEMS);
    // One trial each: min = median = max, in seconds (every survivor declared the victim).
    for (const row of detection!)
      for (const col of [
        "kill → first failed",
        "kill → all failed",
        "stop → first failed",
        "stop → all failed",
      ])
        expect(row[col], `${row["system (min / median / max, s)"]} ${col}`).toMatch(
          /^\d+\.\d \/ \d+\.\d \/ \d+\.\d$/,
        );
    const key = "system (failed verdicts · members · own suspicions)";
    expect(falses?.map((row) => row[key])).toEqual(SYSTEMS);
    for (const row of falses!)
      for (const col of ["loss 20 %", "loss 40 %", "slow member"])
        expect(row[col], `${row[key]} ${col}`).toMatch(/^\d+ · \d+ · \d+$/);
    expect(r.stdout).toMatch(/loss40: packets dropped \/ seen on the members' ports: serf lan \d+\/\d+/);

    const json = JSON.parse(readFileSync(join(out, "gossip-vs-serf.json"), "utf8"));
    expect(json.trials).toHaveLength(SYSTEMS.length * 2);
    expect(json.falseFailures).toHaveLength(SYSTEMS.length * 3);
    expect(json.settings.systems.map((s: { label: string }) => s.label)).toEqual(SYSTEMS);
    expect(readFileSync(join(out, "gossip-vs-serf.md"), "utf8")).toContain("| serf lan ");

    // Nothing of this run is left: not the children it recorded (gossip agents, serf agents),
    // not anything with its tag (the serf agents carry it as a tag value), not its namespace.
    expect(json.leftoverPids).toEqual([]);
    expect(json.leftoverNamespaces).toEqual([]);
    expect((json.childPids as number[]).length).toBeGreaterThanOrEqual(SYSTEMS.length * 5);
    expect((json.childPids as number[]).filter(alive)).toEqual([]);
    expect(pgrep(`lifeline-bench-run=${runId}`)).toEqual([]);
    expect(json.namespace).toMatch(new RegExp(`^llgs-${r.pid}-\\d+$`));
    expect(namespaces().filter((n) => n.startsWith(`llgs-${r.pid}-`))).toEqual([]);
  }, 300_000);
});
