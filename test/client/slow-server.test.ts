import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { dropSyns } from "../fault/iptables.ts";
import { canUseNamespaces, createNamespace, destroyAll } from "../fault/netns.ts";
import { stopAll } from "../fault/process.ts";
import { measureConnects } from "../fault/servers.ts";

/**
 * The seed's slow-server case, for the client, inside a test network namespace: three
 * `lifeline node` processes run in the namespace; the first one's SYNs are dropped five times
 * (iptables hashlimit, see dropSyns), so every TCP connect to it takes about 5 s and then
 * succeeds — slow, not dead. Clients run in the namespace too, as child processes
 * (test/support/connect-attempts.ts), each given the three servers with the slow one FIRST:
 * - a fresh Lifeline client tries the slow one first, races the next after `raceDelay`, and
 *   is connected to another server in under a second;
 * - the seed's loop (`strategy: "classic"`, 5 s connect timeout, servers in order) spends the
 *   whole timeout on the slow one, then connects to the second: at least ~4.5 s.
 * Needs root (namespaces, iptables): skipped with the reason otherwise.
 */
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = fileURLToPath(new URL("../../bin/lifeline.js", import.meta.url));
const PROBE = fileURLToPath(new URL("../support/connect-attempts.ts", import.meta.url));
const skip = canUseNamespaces();
if (skip) console.log(`skipping the client's slow-server test: ${skip}`);

// Each test destroys its namespace in `finally`; this catches anything left on other paths.
afterAll(async () => {
  await destroyAll();
  await stopAll();
});

interface Attempt {
  address: string;
  start: number;
  end?: number;
  result?: string;
}

interface Connected {
  type: "connected";
  strategy: string;
  node: string;
  address: string;
  took: number;
  attempts: Attempt[];
}

const describeAttempts = (c: Connected) =>
  c.attempts.map((a) => `${a.address} ${a.start}-${a.end ?? "?"} ms ${a.result ?? "pending"}`).join("; ");

describe.skipIf(skip !== undefined)("slow server (network namespace)", () => {
  it("a fresh client skips a server that takes 5 s to accept: lifeline < 1 s, classic ≈ the 5 s timeout", async () => {
    const ns = await createNamespace();
    try {
      const ports = [17001, 17002, 17003]; // the namespace's own loopback: no collisions
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
      const slow = `127.0.0.1:${ports[0]}`;
      const servers = ports.map((p) => `127.0.0.1:${p}`);
      const connect = async (strategy: "lifeline" | "classic") => {
        const child = ns.spawn(process.execPath, ["--import", "tsx", PROBE, servers.join(","), strategy], {
          cwd: ROOT,
          name: `client ${strategy}`,
        });
        try {
          return await child.waitForJson<Connected>((o) => o.type === "connected", {
            timeout: 40_000,
            what: `the ${strategy} client to connect`,
          });
        } finally {
          await child.stop();
        }
      };
      // The premise (a plain TCP connect to n1: slow, and it does succeed) and both clients,
      // side by side: each connection has its own SYN bucket.
      const [[premise], lifeline, classic] = await Promise.all([
        measureConnects(ns, ports[0]!, { timeout: 15_000 }),
        connect("lifeline"),
        connect("classic"),
      ]);
      console.log(
        `slow server first (a plain connect to it: ${premise!.ms} ms):\n` +
          `  lifeline: ${lifeline.node} in ${Math.round(lifeline.took)} ms (${describeAttempts(lifeline)})\n` +
          `  classic: ${classic.node} in ${Math.round(classic.took)} ms (${describeAttempts(classic)})`,
      );
      expect(premise).toMatchObject({ ok: true });
      expect(premise!.ms).toBeGreaterThanOrEqual(4900);

      // Lifeline: tried the slow server first, and was on another one in under a second.
      expect(lifeline.attempts[0]).toMatchObject({ address: slow });
      expect(lifeline.attempts[0]!.start).toBeLessThan(
        lifeline.attempts[1]?.start ?? Number.POSITIVE_INFINITY,
      );
      expect(lifeline.node).not.toBe("n1");
      expect(lifeline.address).not.toBe(slow);
      expect(lifeline.took).toBeLessThan(1000);

      // Classic: the slow server first, for the whole connect timeout, then the second one.
      expect(classic.attempts[0]).toMatchObject({ address: slow, result: "LL_TIMEOUT" });
      expect(classic.attempts[1]).toMatchObject({ address: servers[1], result: "connected" });
      expect(classic.node).toBe("n2");
      expect(classic.took).toBeGreaterThanOrEqual(4500);
      expect(classic.took).toBeLessThan(10_000);
    } finally {
      await ns.destroy();
    }
  }, 90_000);
});
