import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { canUseNamespaces } from "../fault/netns.ts";
import { alive, namespaces, parseTables, pgrep, runScript } from "./support.ts";

const out = mkdtempSync(join(tmpdir(), "lifeline-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

// The loss disturbance needs root, `ip` and `iptables`; the benchmark skips it (with the
// reason) otherwise, and so does this test's check of it.
const noNetwork = canUseNamespaces();
if (noNetwork) console.log(`bench/false-positives: loss is skipped here: ${noNetwork}`);

const DISTURBANCES = ["control", "loss", "latency", "stall"];
const VARIANTS = ["lan + heartbeat", "lan + tcp", "classic"];
/** The stall has a counterfactual row too: the heartbeat probe without local health. */
const variantsOf = (d: string) =>
  d === "stall" ? [...VARIANTS, "lan + heartbeat, local health off"] : VARIANTS;

/** The host's iptables rules (empty when iptables cannot be read). */
function hostRules(): string {
  try {
    return execFileSync("iptables-save", [], { encoding: "utf8" });
  } catch {
    return "";
  }
}

describe("bench/false-positives.ts", () => {
  it("a 6-second run of every disturbance and variant prints its tables and leaves nothing behind", async () => {
    const runId = `vitest-${process.pid}-${Date.now()}`;
    const r = await runScript(
      ["bench/false-positives.ts", "--minutes", "0.1", "--targets", "1", "--out", out, "--run-id", runId],
      100_000,
    );
    expect(r.code, r.stderr).toBe(0);

    const [headline, detail] = parseTables(r.stdout);
    expect(headline?.map((row) => row["down · suspect · flaps"])).toEqual(DISTURBANCES);
    expect(Object.keys(headline![0]!)).toEqual(["down · suspect · flaps", ...VARIANTS]);
    expect(detail?.map((row) => `${row.disturbance}/${row.variant}`)).toEqual(
      DISTURBANCES.flatMap((d) => variantsOf(d).map((v) => `${d}/${v}`)),
    );
    for (const x of detail!) {
      if (x.disturbance === "loss" && noNetwork) {
        expect(x["down kinds"]).toBe("skipped");
        continue;
      }
      expect(x.targets).toBe("1");
      // Every monitor got results for every target: the run really watched them.
      expect(Number(x.results), `${x.disturbance} ${x.variant} results`).toBeGreaterThan(0);
      for (const col of ["failed", "discounted", "suspect", "down", "flaps", "degraded"])
        expect(x[col], `${x.disturbance} ${x.variant} ${col}`).toMatch(/^\d+$/);
    }
    expect(r.stdout).toMatch(
      noNetwork ? /loss: skipped — / : /loss, monitor → node: \d+ of \d+ packets dropped/,
    );
    expect(r.stdout).toMatch(/stall, lan \+ heartbeat: \d+ stalls|largest event-loop delay/);

    const json = JSON.parse(readFileSync(join(out, "false-positives.json"), "utf8"));
    expect(json.rows).toHaveLength(DISTURBANCES.length * VARIANTS.length + 1);
    expect(json.childrenDiedDuringTheRun).toEqual([]);
    expect(json.leftoverPids).toEqual([]);
    expect(json.leftoverNamespaces).toEqual([]);
    expect(readFileSync(join(out, "false-positives.md"), "utf8")).toContain("| latency ");
    const svg = readFileSync(join(out, "false-positives.svg"), "utf8");
    expect(svg).toMatch(/^<svg /);
    for (const v of VARIANTS) expect(svg).toContain(v);

    // Nothing of this run is left: not the children it recorded (nodes, monitors, the
    // proxy), not anything with its tag, not its namespace (and with it its iptables rules),
    // and no rule of its on the host either.
    expect(json.proxyPid).toBeGreaterThan(0);
    expect(json.childPids).toContain(json.proxyPid);
    expect((json.childPids as number[]).filter(alive)).toEqual([]);
    expect(pgrep(`lifeline-bench-run=${runId}`)).toEqual([]);
    expect(pgrep(`--id ${runId}-`)).toEqual([]);
    expect(hostRules()).not.toContain(`llfp-${runId}`);
    if (!noNetwork) {
      expect(json.namespace).toMatch(new RegExp(`^llfp-${r.pid}-\\d+$`));
      expect(namespaces().filter((n) => n.startsWith(`llfp-${r.pid}-`))).toEqual([]);
    }
  }, 120_000);
});
