import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { DEFAULT_ADMIN } from "../admin/http.ts";
import { createClient, type LifelineClient } from "../client/client.ts";
import { UsageError } from "../errors.ts";
import { formatMs } from "../util/format.ts";
import { runChaos } from "./demo-chaos.ts";
import { Reaper } from "./demo-reaper.ts";
import { Traffic } from "./demo-traffic.ts";
import { type DemoFrame, DemoView } from "./demo-view.ts";
import type { CliIO } from "./io.ts";
import { LocalCluster } from "./local-cluster.ts";
import { type MonitorHandle, startMonitor } from "./monitor.ts";
import { type ShutdownReason, untilShutdown } from "./signals.ts";

export interface DemoFlags {
  duration?: string;
  chaos?: boolean;
  /** The dashboard's address; default DEFAULT_ADMIN.monitor, else any free port. */
  admin?: string;
}

/** Messages a second, and at most this many unanswered at once. */
const RATE = 40;
const MAX_IN_FLIGHT = 8;

/** The monitor's own output goes nowhere: the demo draws its own view from the engine. */
const quietIO = (): CliIO => ({
  stdout: new Writable({ write: (_chunk, _enc, done) => done() }),
  stderr: new Writable({ write: (_chunk, _enc, done) => done() }),
  env: {},
});

/**
 * `lifeline demo` (what `npm start` runs): the whole system on one machine. Three
 * `lifeline node` processes share a SQLite store in a temporary folder; a monitor (the one
 * `lifeline monitor` runs, with its admin API on loopback) watches them with the heartbeat
 * check; a failover client sends a steady stream of messages and checks every reply. The
 * live view shows the nodes, the client's node, sent / acknowledged / lost / duplicated
 * (counted from the messages themselves) and failover times. `--chaos` kills, freezes and
 * restarts random nodes every few seconds. Ctrl-C (or `--duration`) stops every child
 * process, removes the folder, prints a summary and exits 0; if the demo itself is killed,
 * the nodes exit on their own (`--exit-with-stdin`) and a watchdog thaws a frozen node and
 * removes the folder.
 */
export async function runDemo(flags: DemoFlags, io: CliIO): Promise<number> {
  const seconds = flags.duration === undefined ? undefined : Number(flags.duration);
  if (seconds !== undefined && !(Number.isFinite(seconds) && seconds > 0))
    throw new UsageError(`--duration must be a positive number of seconds, not "${flags.duration}"`);
  // Listen for Ctrl-C before anything is started or announced (see untilShutdown).
  const shutdown = untilShutdown(seconds === undefined ? undefined : seconds * 1000);
  let reason: ShutdownReason | undefined;
  let stop = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  void shutdown.then((r) => {
    reason = r;
    stop();
  });

  const dir = mkdtempSync(join(tmpdir(), "lifeline-demo-"));
  const reaper = new Reaper(dir);
  const store = `sqlite:${join(dir, "demo.db")}`;
  const pids: number[] = [];
  const cluster = new LocalCluster({
    store,
    drainDeadline: 2000,
    detached: true,
    onSpawn: (_id, pid) => {
      pids.push(pid);
      reaper.watch(pid);
    },
  });
  const view = new DemoView(io, flags.chaos === true);
  let monitor: MonitorHandle | undefined;
  let client: LifelineClient | undefined;
  let traffic: Traffic | undefined;
  let chaos: Promise<void> | undefined;
  let redraw: NodeJS.Timeout | undefined;

  const rows = () =>
    cluster.nodes.map((n) => ({
      id: n.id,
      pid: n.pid,
      address: n.address,
      process: n.state,
      health: monitor?.engine.target(n.id),
    }));

  /** Starts everything, then waits for Ctrl-C, SIGTERM or the end of --duration. */
  const run = async (): Promise<void> => {
    await cluster.start();
    if (reason) return;

    // The monitor, as `lifeline monitor -c FILE` runs it: the dashboard on the default
    // port, or on any free one when that is taken (another monitor or demo here).
    const config = join(dir, "monitor.json");
    const targets = cluster.nodes.map((n) => ({
      id: n.id,
      address: `lifeline://${n.address}?heartbeat=250`,
    }));
    writeFileSync(config, JSON.stringify({ targets }));
    const startAt = (admin: string) =>
      startMonitor(
        [],
        {
          config,
          watch: false,
          admin,
          history: join(dir, "history.db"),
          adminTokenFile: join(dir, "admin-token"),
          logLevel: "silent",
        },
        quietIO(),
      );
    monitor = await startAt(flags.admin ?? DEFAULT_ADMIN.monitor).catch((err: NodeJS.ErrnoException) => {
      if (flags.admin !== undefined || err.code !== "EADDRINUSE") throw err;
      return startAt("127.0.0.1:0");
    });
    const engine = monitor.engine;
    engine.on("state", (t) => view.event(`monitor: ${t.target} ${t.from} → ${t.to} (${t.reason})`));
    view.started({ dir, store, admin: monitor.admin?.url, watchdog: reaper.pid }, rows());

    const c = createClient({ servers: cluster.addresses, name: "demo-traffic" });
    client = c;
    c.on("failover", (e) => view.event(`client: failover ${e.from} → ${e.to} in ${formatMs(e.took)}`));
    c.on("disconnected", (e) =>
      view.event(`client: lost ${e.node}${e.error ? ` (${e.error.message})` : ""}`),
    );
    c.on("goaway", (e) => view.event(`client: ${e.node} says GOAWAY (${e.reason}); moving`));
    c.on("session-lost", (e) =>
      view.event(`client: session lost (${e.reason}), ${e.unacknowledged.length} unacknowledged`),
    );
    const connected = c.connect();
    connected.catch(() => {}); // rejects if the demo stops before the client has connected
    await Promise.race([connected, stopped]);
    if (reason) return;
    view.event(`client: connected to ${c.status().node}; sending ${RATE} messages/s`);
    const t = new Traffic(c, {
      rate: RATE,
      maxInFlight: MAX_IN_FLIGHT,
      prefix: `m${randomBytes(3).toString("hex")}`,
    });
    traffic = t;
    t.start();

    if (flags.chaos) {
      chaos = runChaos({
        cluster,
        event: (text) => view.event(text),
        stopped,
        isStopping: () => reason !== undefined,
        clientNode: () => c.status().node,
        settled: () =>
          cluster.nodes.every((n) => n.state === "running") &&
          engine.snapshot().every((s) => s.state === "healthy" || s.state === "degraded"),
      });
    }
    const frame = (): DemoFrame => ({ nodes: rows(), client: c.status(), traffic: t.counters() });
    view.render(frame());
    redraw = setInterval(() => view.render(frame()), view.every);
    await stopped;
  };

  /**
   * The orderly stop: no new messages, faults undone, the client flushed, then the monitor
   * and the nodes (SIGTERM, SIGKILL after 3 s). The view keeps updating meanwhile.
   */
  const cleanup = async (): Promise<void> => {
    traffic?.stop();
    await chaos?.catch(() => {});
    const report = await client?.close({ timeout: 3000 });
    if (report) view.event(`client closed; ${report.unsent + report.unacknowledged} messages unfinished`);
    await monitor?.stop();
    await cluster.close(3000);
    view.event(`nodes stopped; removing ${dir}`);
    clearInterval(redraw);
    rmSync(dir, { recursive: true, force: true });
    await reaper.done();
    shutdown.cancel();
  };

  try {
    await run();
  } catch (err) {
    // A node that would not start, a port that could not be had...: stop what did start.
    reason ??= "SIGTERM";
    stop();
    await cleanup();
    view.close();
    throw err;
  }
  view.event(`stopping (${reason === "timeout" ? "--duration reached" : reason})`);
  await cleanup();
  view.summary(
    traffic?.final() ?? {
      sent: 0,
      acknowledged: 0,
      pending: 0,
      lost: 0,
      duplicated: 0,
      mismatched: 0,
      failovers: [],
    },
    pids,
  );
  return 0;
}
