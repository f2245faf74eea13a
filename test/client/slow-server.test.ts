import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { dropSyns } from "../fault/iptables.ts";
import { canUseNamespaces, createNamespace, destroyAll } from "../fault/netns.ts";
import { stopAll } from "../fault/process.ts";

/**
 * The seed's slow-server case, for the client: one of three servers accepts connections only
 * after ~5 s (its first five SYNs are dropped, inside a test namespace). A fresh Lifeline
 * client that has that server first in its list connects to another one in under a second
 * (the attempts race after `raceDelay`); the seed's loop (`strategy: "classic"`, 5 s connect
 * timeout, servers in order) spends the whole timeout on it first.
 */
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = fileURLToPath(new URL("../../bin/lifeline.js", import.meta.url));
const PROBE = fileURLToPath(new URL("../support/connect-once.ts", import.meta.url));
const skip = canUseNamespaces();
if (skip) console.log(`skipping the client's slow-server test: ${skip}`);

afterAll(async () => {
  await destroyAll();
  await stopAll();
});

interface Connected {
  type: "connected";
  node: string;
  took: number;
}

describe.skipIf(skip !== undefined)("slow server (network namespace)", () => {
  it("a fresh client skips a server that takes 5 s to accept: lifeline < 1 s, classic ≈ the 5 s timeout", async () => {
    const ns = await createNamespace();
    try {
      const ports = [17001, 17002, 17003];
      const nodes = ports.map((port, i) =>
        ns.spawn(
          process.execPath,
          [
            BIN,
            "node",
            "--id",
            `n${i + 1}`,
            "--port",
            String(port),
            "--store",
            "memory",
            "--log-level",
            "warn",
          ],
          { cwd: ROOT, name: `node n${i + 1}` },
        ),
      );
      await Promise.all(
        nodes.map((n) =>
          n.waitForJson((o) => o.type === "listening", { timeout: 30_000, what: "listening" }),
        ),
      );
      await dropSyns(ns, ports[0]!, 5); // n1: every new connection waits ~5 s for its SYN-ACK
      const servers = ports.map((p) => `127.0.0.1:${p}`).join(",");
      const connect = async (strategy: string) => {
        const child = ns.spawn(process.execPath, ["--import", "tsx", PROBE, servers, strategy], {
          cwd: ROOT,
          name: `client ${strategy}`,
        });
        try {
          return await child.waitForJson<Connected>((o) => o.type === "connected", { timeout: 30_000 });
        } finally {
          await child.stop();
        }
      };
      const [lifeline, classic] = await Promise.all([connect("lifeline"), connect("classic")]);
      console.log(
        `slow server first: lifeline connected to ${lifeline.node} in ${Math.round(lifeline.took)} ms; classic to ${classic.node} in ${Math.round(classic.took)} ms`,
      );
      expect(lifeline.node).not.toBe("n1");
      expect(lifeline.took).toBeLessThan(1000);
      expect(classic.node).toBe("n2");
      expect(classic.took).toBeGreaterThanOrEqual(4500);
    } finally {
      await ns.destroy();
    }
  }, 90_000);
});
