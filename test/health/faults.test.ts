import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/resolve.ts";
import { HealthEngine } from "../../src/health/engine.ts";
import { defaultRegistry } from "../../src/health/probes/index.ts";
import type { CheckResult, TargetState, Transition } from "../../src/health/types.ts";
import { blackhole, dropSyns } from "../fault/iptables.ts";
import { canUseNamespaces, createNamespace, destroyAll, type Namespace } from "../fault/netns.ts";
import { type ChildHandle, startProcess, stopAll } from "../fault/process.ts";
import { measureConnects, startServers } from "../fault/servers.ts";

/**
 * The health engine against real faults: the real CLI (`lifeline monitor`, JSON lines) as a
 * child process, real TCP servers, and faults made with signals and iptables inside a
 * network namespace per scenario. Independent scenarios run concurrently.
 */

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = fileURLToPath(new URL("../../bin/lifeline.js", import.meta.url));
const skip = canUseNamespaces();
if (skip) console.log(`skipping network fault tests: ${skip}`);

/** A `state` JSON line of `lifeline monitor`. */
interface StateLine {
  type: "state";
  target: string;
  from: TargetState;
  to: TargetState;
  at: string;
  reason: string;
  kind?: string;
  errno?: string;
}

const STARTUP = 30_000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Starts `lifeline monitor TARGET ARGS` (JSON lines: stdout is a pipe), in `ns` if given. */
async function monitor(ns: Namespace | undefined, target: string, args: string[] = []): Promise<ChildHandle> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("LIFELINE_")) env[k] = v;
  const cmdArgs = [BIN, "monitor", target, "--history", "off", "--no-admin", ...args];
  const opts = { cwd: ROOT, env, name: `monitor ${args.join(" ")}`.trim() };
  const child = ns
    ? ns.spawn(process.execPath, cmdArgs, opts)
    : startProcess(process.execPath, cmdArgs, opts);
  try {
    await child.waitForJson((o) => o.type === "start", { timeout: STARTUP, what: "the start line" });
  } catch (err) {
    await child.stop();
    throw err;
  }
  return child;
}

/** The monitor's `state` lines, from JSON line index `since` on. */
function statesSince(mon: ChildHandle, since = 0): StateLine[] {
  return mon.json.slice(since).filter((o): o is StateLine & Record<string, unknown> => o.type === "state");
}

/** Index of the next JSON line: wait for what happens from now on. */
const mark = (mon: ChildHandle) => mon.json.length;

function waitForState(mon: ChildHandle, to: TargetState, timeout: number, since = 0): Promise<StateLine> {
  return mon.waitForJson<StateLine>((o) => o.type === "state" && o.to === to, {
    timeout,
    since,
    what: `a transition to ${to}`,
  });
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const sequence = (lines: StateLine[]) => lines.map((s) => s.to).join(" → ");

// Each test cleans up its own namespace and processes in `finally`; this catches the rest.
// (Not afterEach: the tests run concurrently, and it would tear down the others' namespaces.)
afterAll(async () => {
  await destroyAll();
  await stopAll();
});

describe.concurrent("lifeline monitor under real faults", () => {
  it("(a) a server killed with SIGKILL ends down with kind refused", async ({ expect }) => {
    const { child: server, ports, host } = await startServers();
    let mon: ChildHandle | undefined;
    try {
      const target = `${host}:${ports[0]}`;
      mon = await monitor(undefined, target);
      await waitForState(mon, "healthy", 20_000);
      const from = mark(mon);
      const killedAt = Date.now();
      server.kill();
      const down = await waitForState(mon, "down", 30_000, from);
      const after = statesSince(mon, from);
      console.log(
        `(a) kill: ${sequence(after)}; down after ${seconds(Date.parse(down.at) - killedAt)}: ${down.reason}`,
      );
      expect(down).toMatchObject({ target, to: "down", kind: "refused", errno: "ECONNREFUSED" });
      expect(after.at(-1)!.to).toBe("down");
    } finally {
      await mon?.stop();
      await server.stop();
    }
  }, 60_000);

  describe.skipIf(skip !== undefined)("in a network namespace", () => {
    it("(b) a blackholed port goes suspect, then down with kind timeout", async ({ expect }) => {
      const ns = await createNamespace();
      try {
        const { ports, host } = await startServers({ ns });
        const mon = await monitor(ns, `${host}:${ports[0]}`);
        await waitForState(mon, "healthy", 20_000);
        const from = mark(mon);
        const faultAt = Date.now();
        await blackhole(ns, ports[0]!);
        const down = await waitForState(mon, "down", 45_000, from);
        const seen = statesSince(mon, from);
        const suspect = seen.find((s) => s.to === "suspect");
        console.log(
          `(b) blackhole: ${sequence(seen)}; suspect after ${suspect ? seconds(Date.parse(suspect.at) - faultAt) : "-"}, ` +
            `down after ${seconds(Date.parse(down.at) - faultAt)}: ${down.reason}`,
        );
        expect(seen.map((s) => s.to)).toEqual(["suspect", "down"]);
        expect(suspect).toMatchObject({ from: "healthy", kind: "timeout" });
        expect(down).toMatchObject({ from: "suspect", kind: "timeout" });
      } finally {
        await ns.destroy();
      }
    }, 90_000);

    /** The seed's case: a live server whose connects take over 4 s (its first 5 SYNs dropped). */
    async function slowServer(ns: Namespace): Promise<{ target: string; port: number }> {
      const { ports, host } = await startServers({ ns });
      await dropSyns(ns, ports[0]!, 5);
      return { target: `${host}:${ports[0]}`, port: ports[0]! };
    }

    it("(c) classic: a server slower than 4 s to accept goes down on the 2 s timeout", async ({ expect }) => {
      const ns = await createNamespace();
      try {
        const { target, port } = await slowServer(ns);
        const mon = await monitor(ns, target, ["--profile", "classic"]);
        const startAt = Date.parse(String(mon.json[0]!.at));
        const [down, [premise]] = await Promise.all([
          waitForState(mon, "down", 20_000),
          measureConnects(ns, port), // the premise: connects do succeed, after > 4 s
        ]);
        console.log(
          `(c) classic: connect took ${premise!.ms} ms; ${sequence(statesSince(mon))}; ` +
            `down ${seconds(Date.parse(down.at) - startAt)} after start: ${down.reason}`,
        );
        expect(premise).toMatchObject({ ok: true });
        expect(premise!.ms).toBeGreaterThan(4000);
        expect(down).toMatchObject({ target, to: "down", kind: "timeout" });
        expect(down.reason).toMatch(/timeout after 2\.0 s/);
      } finally {
        await ns.destroy();
      }
    }, 60_000);

    const WINDOW = 25_000;

    it("(c) lan: a server slower than 4 s to accept from the start is degraded, never down", async ({
      expect,
    }) => {
      const ns = await createNamespace();
      try {
        const { target } = await slowServer(ns);
        const mon = await monitor(ns, target);
        const degraded = await waitForState(mon, "degraded", WINDOW);
        await sleep(Math.max(0, WINDOW - (Date.now() - Date.parse(String(mon.json[0]!.at)))));
        const seen = statesSince(mon);
        console.log(
          `(c) lan, slow from the start, ${WINDOW / 1000} s: ${sequence(seen)}; ${degraded.reason}`,
        );
        expect(degraded.reason).toMatch(/slow/);
        expect(seen.filter((s) => s.to === "down")).toEqual([]);
        expect(seen.at(-1)!.to).toBe("degraded");
        expect(mon.exit).toBeUndefined();
      } finally {
        await ns.destroy();
      }
    }, 90_000);

    it("(c) lan: a healthy server that becomes slower than 4 s to accept is degraded, never down", async ({
      expect,
    }) => {
      const ns = await createNamespace();
      try {
        const { ports, host } = await startServers({ ns });
        const mon = await monitor(ns, `${host}:${ports[0]}`);
        await waitForState(mon, "healthy", 20_000);
        const from = mark(mon);
        const faultAt = Date.now();
        await dropSyns(ns, ports[0]!, 5);
        const degraded = await waitForState(mon, "degraded", WINDOW, from);
        await sleep(Math.max(0, WINDOW - (Date.now() - faultAt)));
        const seen = statesSince(mon, from);
        console.log(
          `(c) lan, became slow, ${WINDOW / 1000} s: ${sequence(seen)}; degraded after ` +
            `${seconds(Date.parse(degraded.at) - faultAt)}: ${degraded.reason}`,
        );
        expect(degraded.reason).toMatch(/slow/);
        expect(seen.filter((s) => s.to === "down")).toEqual([]);
        expect(seen.at(-1)!.to).toBe("degraded");
      } finally {
        await ns.destroy();
      }
    }, 90_000);
  });
});

describe("the monitor's own stall", () => {
  /** Blocks this process's event loop: nothing here runs, the servers' process does. */
  function blockEventLoop(ms: number): number {
    const end = performance.now() + ms;
    let spins = 0;
    while (performance.now() < end) spins++;
    return spins;
  }

  type Watched = { profile: string; engine: HealthEngine; seen: Transition[]; results: CheckResult[] };

  function watchedEngine(profile: "lan" | "classic", targets: unknown[]): Watched {
    const registry = defaultRegistry();
    const config = resolveConfig({ profile, targets, log: { level: "silent" } }, registry);
    const w: Watched = { profile, engine: new HealthEngine(config, { registry }), seen: [], results: [] };
    w.engine.on("state", (t) => w.seen.push(t));
    w.engine.on("result", (r) => w.results.push(r));
    return w;
  }

  it("(d) a 3 s event-loop stall makes no healthy target down (lan); classic is logged", async () => {
    const servers: ChildHandle[] = [];
    let engines: Watched[] = [];
    try {
      // Connect-only targets, and targets that answer PING after 400 ms: those keep attempts
      // in flight, so the stall lands on live deadlines (which must be spoiled, not blamed).
      const quick = await startServers({ count: 4 });
      servers.push(quick.child);
      const thinking = await startServers({ count: 12, mode: "reply", delay: 400 });
      servers.push(thinking.child);
      const targets = [
        ...quick.ports.map((p) => ({ id: `connect-${p}`, address: `${quick.host}:${p}` })),
        ...thinking.ports.map((p) => ({
          id: `ping-${p}`,
          checks: [{ type: "tcp", address: `${thinking.host}:${p}`, send: "PING\n", expect: "PONG" }],
        })),
      ];
      engines = [watchedEngine("lan", targets), watchedEngine("classic", targets)];
      for (const e of engines) e.engine.start();
      const allHealthy = () => engines.every((e) => e.engine.snapshot().every((s) => s.state === "healthy"));
      for (let waited = 0; !allHealthy(); waited += 100) {
        if (waited > 20_000) throw new Error("targets did not all become healthy within 20 s");
        await sleep(100);
      }
      // Stall when attempts are in flight in both engines, so that live deadlines fall inside it.
      const [lan, classic] = engines.map((e) => e.engine);
      for (let waited = 0; lan!.load().inFlight < 2 || classic!.load().inFlight < 1; waited += 10) {
        if (waited > 15_000) throw new Error("never saw attempts in flight in both engines");
        await sleep(10);
      }
      const stallAt = Date.now();
      blockEventLoop(3000);
      const stallEnd = Date.now();
      await sleep(10_000);
      for (const { profile, engine, seen, results } of engines) {
        const after = seen.filter((t) => t.at >= stallAt);
        const count = (to: TargetState) => after.filter((t) => t.to === to).length;
        // Attempts that were in flight across the stall (ended after it, started before it).
        const across = results.filter((r) => r.at >= stallEnd && r.at - r.latency < stallAt);
        const spoiled = across.filter((r) => r.spoiled).length;
        const final = engine.snapshot().map((s) => s.state);
        console.log(
          `(d) ${profile}: 3 s stall with ${across.length} attempts in flight (${spoiled} spoiled): ` +
            `${count("suspect")} suspect, ${count("down")} down of ${targets.length} targets; ` +
            `final: ${final.join(",")}` +
            (after.length
              ? `\n  ${after.map((t) => `${t.target} ${t.from}→${t.to}: ${t.reason}`).join("\n  ")}`
              : ""),
        );
        // The claim is about lan: there the stall must have landed on live attempts, and none
        // of them may turn into a down. classic is only logged (the issue allows it to fail).
        if (profile === "lan") {
          expect(across.length).toBeGreaterThan(0);
          expect(count("down")).toBe(0);
        }
      }
    } finally {
      await Promise.all(engines.map((e) => e.engine.stop()));
      await Promise.all(servers.map((c) => c.stop()));
    }
  }, 90_000);
});
