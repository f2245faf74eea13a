import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { canUseNamespaces } from "../fault/netns.ts";
import { alive, namespaces, parseTables, pgrep, runScript } from "./support.ts";

const out = mkdtempSync(join(tmpdir(), "lifeline-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

// The drop and slow-connect faults need root, `ip` and `iptables`; the benchmark skips them
// (with the reason) otherwise, and so does this test's check of them.
const noNetwork = canUseNamespaces();
if (noNetwork) console.log(`bench/detection: drop and slow-connect are skipped here: ${noNetwork}`);

const FAULTS = ["kill", "stop", "drop", "slow-connect"];
const VARIANTS = ["lan + heartbeat", "lan + tcp", "classic"];

describe("bench/detection.ts", () => {
  it("runs a quick run of every fault and variant, prints its tables and leaves no process or namespace behind", async () => {
    const runId = `vitest-${process.pid}-${Date.now()}`;
    const r = await runScript(["bench/detection.ts", "--quick", "--out", out, "--run-id", runId], 100_000);
    expect(r.code, r.stderr).toBe(0);

    const [medians, detail, healthy] = parseTables(r.stdout);
    expect(medians?.map((row) => row["median down"])).toEqual(FAULTS);
    expect(Object.keys(medians![0]!)).toEqual(["median down", ...VARIANTS]);
    expect(detail?.map((row) => `${row.fault}/${row.variant}`)).toEqual(
      FAULTS.flatMap((f) => VARIANTS.map((v) => `${f}/${v}`)),
    );
    const row = (fault: string, variant: string) =>
      detail!.find((x) => x.fault === fault && x.variant === variant)!;
    for (const x of detail!) {
      if (["drop", "slow-connect"].includes(x.fault!) && noNetwork) {
        expect(x["without down: states seen"]).toBe("skipped");
        continue;
      }
      expect(x.trials, `${x.fault} ${x.variant} trials`).toBe("3");
      expect(x["down n"]).toMatch(/^[0-3]$/);
    }
    expect(r.stdout).toContain(noNetwork ? "drop: skipped —" : "slow-connect: SYNs were dropped for");

    // What each variant can see is asserted, not how fast: every variant convicts a killed
    // node (refused), only the heartbeat probe a frozen one (the kernel still completes
    // handshakes for it), and a blackhole is caught by all three.
    for (const v of VARIANTS) {
      expect(row("kill", v)["down n"], `kill ${v}`).toBe("3");
      expect(row("kill", v)["down median"]).toMatch(/^\d+ ms$/);
    }
    expect(row("kill", "lan + heartbeat")["down kind"]).toMatch(/refused|reset/);
    expect(row("kill", "classic")["down kind"]).toBe("refused");
    expect(row("stop", "lan + heartbeat")["down n"]).toBe("3");
    expect(row("stop", "lan + tcp")["down n"]).toBe("0");
    expect(row("stop", "classic")["down n"]).toBe("0");
    if (!noNetwork) {
      for (const v of VARIANTS) expect(row("drop", v)["down n"], `drop ${v}`).toBe("3");
      // Established connections keep working while new connects hang: the heartbeat probe
      // sees nothing; classic's fixed 2 s timeout convicts the slow node.
      expect(row("slow-connect", "lan + heartbeat")["down n"]).toBe("0");
      expect(row("slow-connect", "classic")["down n"]).toBe("3");
    }

    expect(healthy?.map((x) => x["healthy node, variant"])).toEqual(VARIANTS);
    for (const x of healthy!) {
      expect(Number(x["passing results"]), `${x["healthy node, variant"]} passes`).toBeGreaterThan(5);
      expect(x.down).toMatch(/^\d+$/);
      expect(x.suspect).toMatch(/^\d+$/);
    }

    const json = JSON.parse(readFileSync(join(out, "detection.json"), "utf8"));
    expect(json.trials).toHaveLength(noNetwork ? 6 : 12);
    expect(json.leftoverPids).toEqual([]);
    expect(json.leftoverNamespaces).toEqual([]);
    expect(readFileSync(join(out, "detection.md"), "utf8")).toContain("| stop ");
    const svg = readFileSync(join(out, "detection.svg"), "utf8");
    expect(svg).toMatch(/^<svg /);
    for (const v of VARIANTS) expect(svg).toContain(v);

    // Nothing of this run is left: not the children it recorded (nodes, monitors), not anything
    // with its tag, not its namespace (and with it its iptables rules).
    expect((json.childPids as number[]).filter(alive)).toEqual([]);
    expect(pgrep(`lifeline-bench-run=${runId}`)).toEqual([]);
    expect(pgrep(`--id ${runId}-`)).toEqual([]);
    if (!noNetwork) {
      expect(json.namespace).toMatch(new RegExp(`^lldt-${r.pid}-\\d+$`));
      expect(namespaces().filter((n) => n.startsWith(`lldt-${r.pid}-`))).toEqual([]);
    }
  }, 120_000);
});
