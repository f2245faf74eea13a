import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type LifelineClient } from "../client/client.ts";
import { resolveConfig } from "../config/resolve.ts";
import { HealthEngine } from "../health/engine.ts";
import { defaultRegistry } from "../health/probes/index.ts";
import { formatMs } from "../util/format.ts";
import { type DemoStats, DemoView } from "./demo-view.ts";
import type { CliIO } from "./io.ts";
import { LocalCluster } from "./local-cluster.ts";
import { untilShutdown } from "./signals.ts";

export interface DemoFlags {
  duration?: string;
  chaos?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `lifeline demo` (what `npm start` runs): the whole system on one machine. Three
 * `lifeline node` processes share a SQLite store in a temporary folder; a health engine
 * watches them with the heartbeat check; a failover client sends a steady stream of messages
 * and checks every reply. The live view shows the nodes, the client's node, sent /
 * acknowledged / lost / duplicated (counted from the messages themselves) and failover times.
 * `--chaos` kills, freezes and restarts random nodes every few seconds. Ctrl-C stops every
 * child process and removes the folder.
 */
export async function runDemo(flags: DemoFlags, io: CliIO): Promise<number> {
  const seconds = flags.duration === undefined ? undefined : Number(flags.duration);
  const shutdown = untilShutdown(seconds === undefined ? undefined : seconds * 1000);
  const dir = mkdtempSync(join(tmpdir(), "lifeline-demo-"));
  const cluster = new LocalCluster({ store: `sqlite:${join(dir, "demo.db")}`, drainDeadline: 2000 });
  const view = new DemoView(io, !!flags.chaos);
  let engine: HealthEngine | undefined;
  let client: LifelineClient | undefined;
  const stats: DemoStats = { sent: 0, acknowledged: 0, duplicated: 0, wrong: 0, failovers: [], lost: 0 };
  let running = true;
  const tasks: Promise<void>[] = [];
  try {
    await cluster.start();
    view.event(
      `started nodes ${cluster.nodes.map((n) => `${n.id} (pid ${n.pid}, ${n.address})`).join(", ")}`,
    );
    const registry = defaultRegistry();
    engine = new HealthEngine(
      resolveConfig(
        {
          targets: cluster.nodes.map((n) => ({ id: n.id, address: `lifeline://${n.address}?heartbeat=250` })),
        },
        registry,
      ),
      { registry },
    );
    engine.on("state", (t) => view.event(`${t.target}: ${t.from} → ${t.to} (${t.reason})`));
    engine.start();

    client = createClient({ servers: cluster.addresses, name: "demo-traffic" });
    const c = client;
    c.on("failover", (e) => {
      stats.failovers.push(e.took);
      view.event(`client: failover ${e.from} → ${e.to} in ${formatMs(e.took)}`);
    });
    c.on("disconnected", (e) =>
      view.event(`client: lost ${e.node}${e.error ? ` (${e.error.message})` : ""}`),
    );
    c.on("goaway", (e) => view.event(`client: ${e.node} says GOAWAY; moving`));
    c.on("session-lost", (e) =>
      view.event(`client: session lost, ${e.unacknowledged.length} unacknowledged`),
    );
    await c.connect();

    // Traffic: 4 lanes, ~10 messages/s each; every reply must be its own message, once.
    const seen = new Set<string>();
    for (let lane = 0; lane < 4; lane++) {
      tasks.push(
        (async () => {
          for (let i = 0; running; i++) {
            const id = `demo-${lane}-${i}`;
            stats.sent++;
            try {
              const reply = Buffer.from(await c.send(id)).toString("utf8");
              if (reply !== id) stats.wrong++;
              else if (seen.has(id)) stats.duplicated++;
              else {
                seen.add(id);
                stats.acknowledged++;
              }
            } catch {
              // closed (counted as lost below if it was never answered)
            }
            await sleep(100);
          }
        })(),
      );
    }
    if (flags.chaos) tasks.push(chaos(cluster, view, () => running));

    const redraw = setInterval(() => view.render(cluster, engine!.snapshot(), c.status(), stats), view.every);
    await shutdown;
    clearInterval(redraw);
  } finally {
    running = false;
    shutdown.cancel();
    view.event("stopping");
    const report = await client?.close({ timeout: 3000 });
    await Promise.all(tasks);
    await engine?.stop();
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
    stats.lost = stats.sent - stats.acknowledged - stats.duplicated - stats.wrong;
    view.summary(stats, cluster.allPids, report, dir);
  }
  return 0;
}

/** Every 3-6 s: kill, freeze or restart a random running node (one impaired at a time). */
async function chaos(cluster: LocalCluster, view: DemoView, running: () => boolean): Promise<void> {
  const pause = async (ms: number) => {
    const end = Date.now() + ms;
    while (running() && Date.now() < end) await sleep(50);
  };
  await pause(4000);
  while (running()) {
    const up = cluster.nodes.filter((n) => n.state === "running");
    const victim = up[Math.floor(Math.random() * up.length)];
    if (victim) {
      const action = ["kill", "freeze", "restart"][Math.floor(Math.random() * 3)]!;
      if (action === "kill") {
        view.event(`chaos: SIGKILL ${victim.id} (pid ${victim.pid})`);
        await cluster.kill(victim.id);
        await pause(2000);
        await cluster.restart(victim.id);
        view.event(`chaos: restarted ${victim.id} (pid ${cluster.node(victim.id).pid})`);
      } else if (action === "freeze") {
        view.event(`chaos: SIGSTOP ${victim.id} (frozen: accepts connections, answers nothing)`);
        cluster.freeze(victim.id);
        await pause(3000);
        cluster.thaw(victim.id);
        view.event(`chaos: SIGCONT ${victim.id}`);
      } else {
        view.event(`chaos: graceful restart of ${victim.id} (SIGTERM: GOAWAY, drain)`);
        await cluster.restart(victim.id);
        view.event(`chaos: ${victim.id} is back (pid ${cluster.node(victim.id).pid})`);
      }
    }
    await pause(3000 + Math.random() * 3000);
  }
}
