import { randomBytes } from "node:crypto";
import {
  chmodSync,
  type FSWatcher,
  mkdirSync,
  readFileSync,
  unlinkSync,
  watch,
  writeFileSync,
} from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { adminOff, DEFAULT_ADMIN } from "../admin/http.ts";
import { hookMetrics, type MonitorMetrics, monitorMetrics } from "../admin/monitor-metrics.ts";
import { type AdminServer, startAdmin } from "../admin/server.ts";
import { type Loaded, loadConfig, parseConfigText, type RawObject, redact } from "../config/load.ts";
import { ConfigError, UsageError } from "../errors.ts";
import type { ConfigChange } from "../health/engine.ts";
import { HealthEngine } from "../health/engine.ts";
import { parseHostPort } from "../health/probes/address.ts";
import { defaultRegistry } from "../health/probes/index.ts";
import type { Transition } from "../health/types.ts";
import { HookDispatcher } from "../hooks/dispatcher.ts";
import { createLogger, type Logger, type LogLevel } from "../util/logger.ts";
import { VERSION } from "../version.ts";
import { ClusterFollower } from "./cluster-follower.ts";
import type { CliIO } from "./io.ts";
import { type CommonFlags, flagsToRaw } from "./options.ts";
import { untilShutdown } from "./signals.ts";
import { renderSummary, renderTable, renderTransition } from "./table.ts";

export interface MonitorFlags extends CommonFlags {
  /** Also print every check result as a JSON line (non-TTY only). */
  results?: boolean;
  /** Do not watch the config file for changes (SIGHUP still reloads). */
  watch?: boolean;
  /** Admin HTTP address, "host:port" (admin.listen); false or "off": none. */
  admin?: string | boolean;
  /** Admin token (admin.token; also LIFELINE_ADMIN_TOKEN). */
  adminToken?: string;
  /** History file (history.path), or "off". */
  history?: string;
  /** Where a generated admin token is written (no token configured). Default DEFAULT_TOKEN_FILE. */
  adminTokenFile?: string;
  /** Follow a whole cluster through these nodes ("host:port" client addresses): every node
   *  the cluster's TOPOLOGY lists becomes a heartbeat target, added and removed as it changes. */
  cluster?: string;
}

export interface MonitorHandle {
  engine: HealthEngine;
  /** The admin server (on by default; undefined when off or its default port was taken). */
  admin: AdminServer | undefined;
  /** The Prometheus registry /metrics serves. */
  metrics: MonitorMetrics;
  /** State-change hooks (commands, webhooks). */
  hooks: HookDispatcher;
  /** The token admin writes need: the configured one, or one generated for this run and
   *  written to `adminTokenFile`. Undefined without an admin server. */
  adminToken: string | undefined;
  /** Re-reads the configuration; on error keeps the old one and returns the error. */
  reload(): ConfigError | undefined;
  /** Shows a line of commentary: in the event pane on a terminal, as a `note` JSON line otherwise. */
  note(text: string): void;
  /** Stops checks, timers and watchers. */
  stop(): Promise<void>;
}

const FRAME_INTERVAL = 500;
/** Where a generated admin token goes (relative to the working directory). */
export const DEFAULT_TOKEN_FILE = ".lifeline/admin-token";
const EVENT_LINES = 8;

/**
 * Starts a monitor: the health engine, reload on SIGHUP and on file change, and output —
 * a live table on a terminal, JSON lines otherwise (a `start` line, then every state change
 * and config change, and with --results every result).
 */
export async function startMonitor(
  targets: string[],
  flags: MonitorFlags,
  io: CliIO,
): Promise<MonitorHandle> {
  const registry = defaultRegistry();
  const file = flags.config ?? io.env.LIFELINE_CONFIG;
  const flagsRaw = flagsToRaw(flags);
  if (flags.history !== undefined) flagsRaw.history = { path: flags.history };
  const seeds = (flags.cluster ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of seeds) if (!parseHostPort(s)) throw new UsageError(`--cluster: "${s}" is not host:port`);
  // Nodes of the followed cluster (--cluster), as targets; replaced when its TOPOLOGY changes.
  let clusterTargets: RawObject[] = [];
  const load = (document?: RawObject): Loaded =>
    loadConfig({
      registry,
      file,
      document,
      env: io.env,
      flags: flagsRaw,
      targets: [...targets, ...clusterTargets],
    });
  let loaded = load();
  if (loaded.config.targets.length === 0 && !file && seeds.length === 0) {
    throw new UsageError("nothing to monitor: give TARGET arguments, --cluster or a config file (-c)");
  }
  const tty = io.stdout.isTTY === true && !flags.json;
  // On a terminal the table shows state changes; logs would tear it, so only explicit
  // --log-level output goes to stderr there.
  const level: LogLevel = tty && flags.logLevel === undefined ? "silent" : loaded.config.log.level;
  const logger: Logger = createLogger(level);
  const historyPath = loaded.config.history.path;
  if (historyPath && historyPath !== ":memory:")
    mkdirSync(dirname(resolve(historyPath)), { recursive: true });
  const engine = new HealthEngine(loaded.config, {
    registry,
    logger,
    ...(historyPath ? { history: { path: historyPath, retention: loaded.config.history.retention } } : {}),
  });
  const write = (obj: unknown) => io.stdout.write(`${JSON.stringify(obj)}\n`);

  const recent: string[] = [];
  const remember = (line: string) => {
    recent.push(line);
    if (recent.length > EVENT_LINES) recent.splice(0, recent.length - EVENT_LINES);
  };
  const hooks = new HookDispatcher(loaded.config.hooks, { logger });
  engine.on("state", (t) => hooks.notify(t));
  const metrics = monitorMetrics(engine, { extra: (r) => hookMetrics(r, hooks) });
  const startedAt = Date.now();
  let stopping = false;

  /** Applies a new configuration; never throws: on error the old one keeps running. */
  const apply = (
    next: () => Loaded,
    source: string,
  ): { ok: true; change: ConfigChange } | { ok: false; error: ConfigError } => {
    try {
      const fresh = next();
      const change = engine.apply(fresh.config);
      hooks.replace(fresh.config.hooks);
      loaded = fresh;
      logger.info({ event: "config", source, ...change }, `configuration reloaded (${source})`);
      if (tty)
        remember(
          `config reloaded: +${change.added.length} -${change.removed.length} ~${change.changed.length}`,
        );
      return { ok: true, change };
    } catch (caught) {
      const err =
        caught instanceof ConfigError
          ? caught
          : new ConfigError(
              [{ path: "", message: caught instanceof Error ? caught.message : String(caught) }],
              {
                cause: caught,
              },
            );
      logger.error(
        { event: "config-rejected", source, issues: err.issues },
        `${err.message}; keeping the running configuration`,
      );
      if (tty) remember(`config rejected: ${err.message}`);
      else write({ type: "config-rejected", source, issues: err.issues });
      return { ok: false, error: err };
    }
  };

  // The admin server first: if it cannot start, nothing else has been set up yet.
  const explicit = typeof flags.admin === "string" ? flags.admin : loaded.config.admin.listen;
  const listen =
    adminOff(flags.admin) || adminOff(explicit) ? undefined : (explicit ?? DEFAULT_ADMIN.monitor);
  let admin: AdminServer | undefined;
  let adminToken: string | undefined;
  let tokenFile: string | undefined;
  let generated: string | undefined;
  const generateToken = () => {
    generated = randomBytes(24).toString("base64url");
    return generated;
  };
  if (listen) {
    const token =
      flags.adminToken ?? io.env.LIFELINE_ADMIN_TOKEN ?? loaded.config.admin.token ?? generateToken();
    try {
      admin = await startAdmin({
        listen,
        token,
        engine,
        logger,
        metrics: metrics.registry,
        info: { version: VERSION, startedAt, profile: loaded.config.profile },
        ready: () => {
          if (stopping) return { ready: false, reason: "stopping" };
          const lag = engine.local.lag();
          if (lag > 1000) return { ready: false, reason: `the monitor's event loop lags ${lag} ms` };
          return { ready: true, reason: "running" };
        },
        config: {
          get: () => redact(loaded.raw),
          put: (text) => {
            let doc: RawObject;
            try {
              doc = parseConfigText(text, "PUT /api/config");
            } catch (err) {
              return {
                ok: false,
                issues: err instanceof ConfigError ? err.issues : [{ path: "", message: String(err) }],
              };
            }
            const r = apply(() => load(doc), "api");
            return r.ok ? { ok: true, change: r.change } : { ok: false, issues: r.error.issues };
          },
        },
      });
    } catch (err) {
      // The default port is a convenience: taken (another monitor), run without it.
      if (explicit !== undefined || (err as NodeJS.ErrnoException).code !== "EADDRINUSE") {
        metrics.close();
        throw err;
      }
      logger.warn(
        { event: "admin-off", listen, err: String(err) },
        `admin port ${listen} is taken: running without the dashboard and API (use --admin HOST:PORT)`,
      );
    }
    if (admin) {
      logger.info({ event: "admin", url: admin.url }, `dashboard and admin API on ${admin.url}`);
      adminToken = token;
      if (token === generated) {
        // Writes (ttl reports, operator actions, PUT /api/config) need it: it is in a file
        // only this user can read, for the scripts that report in.
        tokenFile = resolve(flags.adminTokenFile ?? DEFAULT_TOKEN_FILE);
        mkdirSync(dirname(tokenFile), { recursive: true });
        writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
        chmodSync(tokenFile, 0o600);
        logger.info({ event: "admin-token", file: tokenFile }, `admin token for writes in ${tokenFile}`);
      }
    }
  }

  let frameTimer: NodeJS.Timeout | undefined;
  const render = () => {
    const snaps = engine.snapshot();
    const width = io.stdout.columns ?? 120;
    const lines = [
      renderSummary(snaps, true),
      "",
      ...renderTable(snaps, { now: Date.now(), width, colour: true }),
      "",
      ...recent,
    ];
    io.stdout.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join("\n")}\n\x1b[J`);
  };

  if (tty) {
    io.stdout.write("\x1b[?1049h\x1b[?25l");
    engine.on("state", (t: Transition) => remember(renderTransition(t, true)));
    frameTimer = setInterval(render, FRAME_INTERVAL);
  } else {
    write({
      type: "start",
      at: new Date().toISOString(),
      profile: loaded.config.profile,
      targets: loaded.config.targets.map((t) => t.id),
      admin: admin?.url,
    });
    engine.on("state", (t) => write({ type: "state", ...t, at: new Date(t.at).toISOString() }));
    engine.on("config", (c) => write({ type: "config", ...c }));
    if (flags.results) {
      engine.on("result", (r) => write({ type: "result", ...r, at: new Date(r.at).toISOString() }));
    }
  }

  /** Re-reads the file (dropping a configuration given by PUT); never throws. */
  const reload = (): ConfigError | undefined => {
    const r = apply(() => load(), "file");
    return r.ok ? undefined : r.error;
  };

  const onHup = () => reload();
  process.on("SIGHUP", onHup);
  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  if (file && flags.watch !== false) {
    try {
      // Watch the directory, not the file: editors that save by renaming a new file over
      // the old one would leave a watch on the file looking at a deleted inode.
      const name = basename(file);
      watcher = watch(dirname(resolve(file)), (_event, changed) => {
        if (changed !== null && changed !== name) return;
        clearTimeout(debounce);
        debounce = setTimeout(reload, 300);
      });
    } catch (err) {
      logger.warn(
        { event: "watch-failed", file, err: String(err) },
        "cannot watch the config file; SIGHUP still reloads",
      );
    }
  }

  engine.start();
  if (tty) render();
  const follower =
    seeds.length > 0
      ? new ClusterFollower({
          seeds,
          logger,
          onChange: (nodes) => {
            clusterTargets = nodes.map((n) => ({ id: n.id, address: `lifeline://${n.address}` }));
            apply(() => load(), "cluster");
          },
        })
      : undefined;
  follower?.start();

  return {
    engine,
    admin,
    metrics,
    hooks,
    adminToken,
    reload,
    note(text: string) {
      if (tty) remember(`${new Date().toISOString().slice(11, 19)}  ${text}`);
      else write({ type: "note", at: new Date().toISOString(), text });
    },
    async stop() {
      stopping = true;
      follower?.stop();
      process.off("SIGHUP", onHup);
      watcher?.close();
      clearTimeout(debounce);
      clearInterval(frameTimer);
      await engine.stop();
      await hooks.stop(5000); // notifications already queued get a few seconds to go out
      await admin?.close();
      metrics.close();
      if (tokenFile) {
        try {
          // Only our own: another monitor may have written its token since.
          if (readFileSync(tokenFile, "utf8").trim() === adminToken) unlinkSync(tokenFile);
        } catch {
          // already gone
        }
      }
      if (tty) io.stdout.write("\x1b[?25h\x1b[?1049l");
    },
  };
}

/** `lifeline monitor`: runs until SIGINT or SIGTERM, then exits 0. */
export async function runMonitor(targets: string[], flags: MonitorFlags, io: CliIO): Promise<number> {
  const shutdown = untilShutdown();
  let handle: Awaited<ReturnType<typeof startMonitor>>;
  try {
    handle = await startMonitor(targets, flags, io);
  } catch (err) {
    shutdown.cancel();
    throw err;
  }
  await shutdown;
  await handle.stop();
  return 0;
}
