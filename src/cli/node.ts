import { adminOff, DEFAULT_ADMIN } from "../admin/http.ts";
import { startNodeAdmin } from "../admin/node-admin.ts";
import { UsageError } from "../errors.ts";
import { parseHostPort } from "../health/probes/address.ts";
import { loadApp } from "../node/apps/index.ts";
import { LifelineNode } from "../node/node.ts";
import { PeerWatcher } from "../node/peers.ts";
import { openStore } from "../store/index.ts";
import { createLogger, type LogLevel } from "../util/logger.ts";
import type { CliIO } from "./io.ts";
import { type GossipFlags, gossipSetup, NodeGossip } from "./node-gossip.ts";
import { untilShutdown } from "./signals.ts";

export interface NodeFlags extends GossipFlags {
  id: string;
  port: string;
  host?: string;
  advertise?: string;
  peers?: string;
  store?: string;
  app?: string;
  sessionTtl?: string;
  drainDeadline?: string;
  logLevel?: string;
  /** Admin address; default DEFAULT_ADMIN.node; false or "off": none. */
  admin?: string | boolean;
  adminToken?: string;
  /** Drain and exit when stdin closes (a parent that starts nodes gives each a pipe: if the
   *  parent dies, however it dies, its nodes follow). */
  exitWithStdin?: boolean;
}

function positive(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`--${name} must be a number of milliseconds, not "${v}"`);
  return n;
}

/**
 * `lifeline node`: runs a cluster node until SIGTERM or SIGINT, then drains (GOAWAY to every
 * connection, wait for clients to move and acknowledgements to flush, up to the drain
 * deadline) and exits 0. Logs are JSON lines on stderr; the listening address is printed
 * on stdout as a JSON line, so scripts (and tests) that start nodes on port 0 can read it.
 */
export async function runNode(flags: NodeFlags, io: CliIO): Promise<number> {
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port must be 0-65535, not "${flags.port}"`);
  const peers = (flags.peers ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of peers) if (!parseHostPort(p)) throw new UsageError(`--peers: "${p}" is not host:port`);
  const gossip = gossipSetup(flags, flags.host ?? "127.0.0.1", io.env);
  if (gossip && peers.length > 0)
    throw new UsageError("--peers and --join/--gossip cannot be used together: gossip finds the peers");
  const logger = createLogger((flags.logLevel ?? "info") as LogLevel);
  const store = await openStore(flags.store ?? io.env.LIFELINE_STORE);
  const app = await loadApp(flags.app ?? "echo");
  const sessionTtl = positive("session-ttl", flags.sessionTtl);
  const drainDeadline = positive("drain-deadline", flags.drainDeadline);
  const node = new LifelineNode({
    id: flags.id,
    host: flags.host ?? "127.0.0.1",
    port,
    ...(flags.advertise ? { advertise: flags.advertise } : {}),
    store,
    app,
    logger,
    ...(sessionTtl !== undefined ? { sessionTtl } : {}),
    ...(drainDeadline !== undefined ? { drainDeadline } : {}),
  });
  // Listen for signals before announcing the port (see untilShutdown).
  const shutdown = untilShutdown();
  let watcher: PeerWatcher | undefined;
  let members: NodeGossip | undefined;
  let admin: Awaited<ReturnType<typeof startNodeAdmin>> | undefined;
  try {
    await node.start();
    watcher =
      peers.length > 0
        ? new PeerWatcher({ peers, logger, onChange: (nodes) => node.setPeers(nodes) })
        : undefined;
    watcher?.start();
    members = gossip ? await NodeGossip.start(node, gossip, logger) : undefined;
    // On by default on loopback; a second node on the machine finds the default port
    // taken and runs without (an address given explicitly must bind).
    const explicit = typeof flags.admin === "string" && !adminOff(flags.admin);
    if (!adminOff(flags.admin)) {
      const listen = explicit ? (flags.admin as string) : DEFAULT_ADMIN.node;
      try {
        admin = await startNodeAdmin({
          listen,
          token: flags.adminToken ?? io.env.LIFELINE_ADMIN_TOKEN,
          node,
          logger,
          ...(members ? { membership: members.membership } : {}),
        });
      } catch (err) {
        if (explicit || (err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
        logger.info(
          { event: "admin-off", listen },
          `admin port ${listen} is taken (another node here?): no admin API; give --admin HOST:PORT`,
        );
      }
    }
  } catch (err) {
    shutdown.cancel();
    await watcher?.stop();
    await members?.stop().catch(() => {});
    await node.stop().catch(() => {});
    await store.close();
    throw err;
  }
  io.stdout.write(
    `${JSON.stringify({ type: "listening", node: node.nodeId, address: node.address, port: node.port, store: store.description, app: app.name, admin: admin?.url, ...(members ? { gossip: members.address } : {}) })}\n`,
  );
  const stdinClosed = flags.exitWithStdin
    ? new Promise<"stdin closed">((resolve) => {
        process.stdin.on("data", () => {});
        process.stdin.once("end", () => resolve("stdin closed"));
        process.stdin.once("error", () => resolve("stdin closed"));
      })
    : new Promise<never>(() => {});
  const signal = await Promise.race([shutdown, stdinClosed]);
  shutdown.cancel();
  logger.info({ event: "signal", signal }, `${signal}: draining`);
  await node.drain(`node ${node.nodeId} received ${signal}`);
  await watcher?.stop();
  await members?.stop();
  await admin?.close();
  await store.close();
  io.stdout.write(`${JSON.stringify({ type: "stopped", node: node.nodeId })}\n`);
  return 0;
}
