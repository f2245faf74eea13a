import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { startNodeAdmin } from "../../src/admin/node-admin.ts";
import { startMonitor } from "../../src/cli/monitor.ts";
import { createClient } from "../../src/client/client.ts";
import { clientMetrics } from "../../src/client/metrics.ts";
import { Membership, UdpTransport } from "../../src/membership/index.ts";
import { echoApp } from "../../src/node/apps/echo.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { memoryIO } from "../support/io.ts";
import { closedPort } from "../support/servers.ts";

/**
 * The README's metric tables are the contract: every series they list is served, with a
 * value, by the component they list it under (and nothing called lifeline_* is undocumented).
 */
const dir = mkdtempSync(join(tmpdir(), "lifeline-metrics-doc-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Metric names documented in the README table whose header names `component`. */
function documented(component: "monitor" | "node" | "client"): string[] {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const names: string[] = [];
  let inTable = false;
  for (const line of readme.split("\n")) {
    if (line.startsWith("| Metric (")) inTable = line.startsWith(`| Metric (${component}`);
    else if (!line.startsWith("|")) inTable = false;
    else if (inTable) {
      const m = /^\| `(lifeline_[a-z_]+)`/.exec(line);
      if (m) names.push(m[1]!);
    }
  }
  return names;
}

/** Base names of lifeline_* series in Prometheus text (histogram suffixes folded). */
function served(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    const m = /^(lifeline_[a-z_]+?)(_bucket|_sum|_count)?(\{| )/.exec(line);
    if (m && Number.isFinite(Number(line.slice(line.lastIndexOf(" ") + 1)))) out.add(m[1]!);
  }
  return out;
}

async function until(cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("documented metrics", () => {
  it("the monitor, a node and a client serve every series the README lists, and only those", async () => {
    const node = new LifelineNode({ id: "n1", port: 0, store: new MemoryStore(), app: echoApp });
    await node.start();
    // A gossiping node (--join), so that the lifeline_gossip_* series are served too.
    const membership = new Membership({ id: "n1", transport: await UdpTransport.listen() });
    membership.start();
    cleanups.push(() => membership.stop());
    const nodeAdmin = await startNodeAdmin({ listen: "127.0.0.1:0", node, membership });
    cleanups.push(async () => {
      await nodeAdmin.close();
      await node.stop();
    });
    const client = createClient({ servers: [node.address], name: "doc" });
    cleanups.push(async () => {
      await client.close({ timeout: 0 });
    });
    const clientRegistry = clientMetrics(client);
    await client.connect();
    await client.send("x");

    const file = join(dir, "m.yaml");
    writeFileSync(
      file,
      [
        "defaults: { interval: 200ms, fastInterval: 100ms }",
        "hooks:",
        `  - command: [${JSON.stringify(process.execPath)}, "-e", ""]`,
        "    notifyInitial: true",
        "targets:",
        `  - id: n1`,
        `    address: lifeline://${node.address}?heartbeat=100`,
        `  - id: tcp-ok`, // an active check: srtt
        `    address: ${node.address}`,
        `  - id: gone`, // failures by kind
        `    address: 127.0.0.1:${await closedPort()}`,
        "",
      ].join("\n"),
    );
    const m = await startMonitor(
      [],
      { config: file, watch: false, admin: "127.0.0.1:0", history: "off" },
      memoryIO(),
    );
    cleanups.push(() => m.stop());
    await until(() => m.engine.target("n1")?.state === "healthy");
    await until(() => m.engine.target("tcp-ok")?.state === "healthy");
    await until(() => m.engine.target("gone")?.state === "down");
    await until(() => m.hooks.stats().sent >= 1);

    const monitorText = await (await fetch(`${m.admin!.url}/metrics`)).text();
    const nodeText = await (await fetch(`${nodeAdmin.url}/metrics`)).text();
    const clientText = await clientRegistry.metrics();
    for (const [component, text] of [
      ["monitor", monitorText],
      ["node", nodeText],
      ["client", clientText],
    ] as const) {
      const docs = documented(component);
      expect(docs.length, component).toBeGreaterThan(4);
      expect([...served(text)].sort(), component).toEqual([...docs].sort());
    }
  });
});
