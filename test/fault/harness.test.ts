import { spawnSync } from "node:child_process";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  addCountedLoss,
  blackhole,
  dropSyns,
  inputRules,
  loss,
  readCountedLoss,
  refuse,
  synDelay,
} from "./iptables.ts";
import {
  canUseNamespaces,
  cleanupLeftovers,
  createNamespace,
  destroyAll,
  listNamespaces,
  pidAlive,
  run,
} from "./netns.ts";
import { startProcess, stopAll } from "./process.ts";
import { measureConnects, startServers } from "./servers.ts";

/** The fault harness itself: namespaces, rules and processes leave nothing behind. */
const skip = canUseNamespaces();
if (skip) console.log(`skipping fault harness tests: ${skip}`);

describe.skipIf(skip !== undefined)("fault harness", () => {
  afterEach(async () => {
    await destroyAll();
    await stopAll();
  });
  afterAll(async () => {
    await cleanupLeftovers();
  });

  it("creates a namespace with lo up and destroys it with what runs inside", async () => {
    const ns = await createNamespace();
    try {
      expect(ns.name).toMatch(new RegExp(`^ll-${process.pid}-\\d+$`));
      expect(listNamespaces()).toContain(ns.name);
      const { stdout } = await ns.exec("ip", ["-o", "link", "show", "lo"]);
      expect(stdout).toMatch(/state UNKNOWN|UP/);
      const sysctl = await ns.exec("sysctl", ["-n", "net.ipv4.tcp_syn_linear_timeouts"]);
      expect(sysctl.stdout.trim()).toBe("4");
      const { child, ports } = await startServers({ ns });
      const [first] = await measureConnects(ns, ports[0]!);
      expect(first).toMatchObject({ ok: true });
      // The host cannot reach the namespace's loopback.
      const [outside] = await measureConnects(undefined, ports[0]!, { timeout: 2000 });
      expect(outside?.ok).toBe(false);
      await ns.destroy();
      expect(listNamespaces()).not.toContain(ns.name);
      expect(pidAlive(child.pid)).toBe(false);
      await ns.destroy(); // idempotent
    } finally {
      await ns.destroy();
    }
  });

  it("counted loss drops some of what it sees, reads both counts back, and undo removes it", async () => {
    const ns = await createNamespace();
    try {
      const { ports } = await startServers({ ns });
      const port = ports[0]!;
      const undos = await addCountedLoss(ns, ["-p", "tcp", "--dport", String(port)], 0.5, `tst:in:${port}`);
      await measureConnects(ns, port, { parallel: 40, timeout: 3000 });
      const counts = (await readCountedLoss(ns, "tst")).get(`in:${port}`)!;
      expect(counts.packets).toBeGreaterThanOrEqual(40);
      expect(counts.dropped).toBeGreaterThan(0);
      expect(counts.dropped).toBeLessThan(counts.packets);
      expect((await inputRules(ns)).join("\n")).toContain(`tst:in:${port}:drop`);
      for (const undo of undos) await undo();
      expect((await inputRules(ns)).join("\n")).not.toContain("tst:");
    } finally {
      await ns.destroy();
    }
  });

  it("each fault rule does what it says, and undo removes it", async () => {
    const ns = await createNamespace();
    try {
      const { ports } = await startServers({ ns, count: 3 });
      const [a, b, c] = ports as [number, number, number];
      const undoRefuse = await refuse(ns, a);
      const undoBlackhole = await blackhole(ns, b);
      const undoLoss = await loss(ns, c, 0.25);
      const undoSyns = await dropSyns(ns, c, 2);
      const rules = await inputRules(ns);
      expect(rules).toHaveLength(4);
      expect(rules.join("\n")).toContain("--reject-with tcp-reset");
      expect(rules.join("\n")).toContain("--probability 0.25");
      expect(rules.join("\n")).toContain("--hashlimit-burst 2");

      const [refused] = await measureConnects(ns, a);
      expect(refused).toMatchObject({ ok: false, code: "ECONNREFUSED" });
      expect(refused!.ms).toBeLessThan(1000);
      const [hung] = await measureConnects(ns, b, { timeout: 1500 });
      expect(hung).toMatchObject({ ok: false, code: "ETIMEDOUT" });

      for (const undo of [undoRefuse, undoBlackhole, undoLoss, undoSyns]) await undo();
      await undoRefuse(); // idempotent
      expect(await inputRules(ns)).toEqual([]);
      const after = await measureConnects(ns, a, { parallel: 1, timeout: 1500 });
      const after2 = await measureConnects(ns, b, { parallel: 1, timeout: 1500 });
      expect([...after, ...after2].every((r) => r.ok && r.ms < 500)).toBe(true);
    } finally {
      await ns.destroy();
    }
  });

  it("dropSyns makes every connection slow, but it succeeds", async () => {
    const ns = await createNamespace();
    try {
      const { ports } = await startServers({ ns, count: 2 });
      await dropSyns(ns, ports[0]!, 3);
      await dropSyns(ns, ports[1]!, 5);
      // Two connections at once per port: the budget is per connection (source port).
      const [three, five] = await Promise.all([
        measureConnects(ns, ports[0]!, { parallel: 2 }),
        measureConnects(ns, ports[1]!, { parallel: 2 }),
      ]);
      console.log(
        `dropSyns connect times: count 3 → ${three.map((r) => r.ms).join(", ")} ms; ` +
          `count 5 → ${five.map((r) => r.ms).join(", ")} ms`,
      );
      for (const r of three) {
        expect(r.ok).toBe(true);
        expect(r.ms).toBeGreaterThanOrEqual(synDelay(3) - 100);
        expect(r.ms).toBeLessThan(synDelay(3) + 1500);
      }
      for (const r of five) {
        expect(r.ok).toBe(true);
        expect(r.ms).toBeGreaterThan(3000);
        expect(r.ms).toBeGreaterThanOrEqual(synDelay(5) - 100);
        expect(r.ms).toBeLessThan(synDelay(5) + 1500);
      }
    } finally {
      await ns.destroy();
    }
  });

  it("cleanupLeftovers deletes namespaces of dead runs, with their processes, and keeps live ones", async () => {
    const deadPid = spawnSync("true").pid!;
    expect(pidAlive(deadPid)).toBe(false);
    const stale = `ll-${deadPid}-0`;
    const mine = await createNamespace();
    await run("ip", ["netns", "add", stale]);
    // A process left running inside the stale namespace (not tracked by anyone).
    const orphan = startProcess("ip", ["netns", "exec", stale, "sleep", "600"], { name: "orphan" });
    try {
      await new Promise((r) => setTimeout(r, 100));
      expect(listNamespaces()).toEqual(expect.arrayContaining([stale, mine.name]));
      const deleted = await cleanupLeftovers();
      expect(deleted).toContain(stale);
      expect(deleted).not.toContain(mine.name);
      expect(listNamespaces()).not.toContain(stale);
      expect(listNamespaces()).toContain(mine.name);
      const exit = await orphan.exited;
      expect(exit.signal).toBe("SIGKILL");
    } finally {
      await orphan.stop(0);
      if (listNamespaces().includes(stale)) await run("ip", ["netns", "delete", stale]);
      await mine.destroy();
    }
  });
});

/** Guard against a forgotten namespace from any test above. */
function namespacesOf(pid: number): string[] {
  return listNamespaces().filter((n) => n.startsWith(`ll-${pid}-`));
}

afterAll(() => {
  if (skip) return;
  const left = namespacesOf(process.pid);
  expect(left, "namespaces left behind").toEqual([]);
});
